"""Gemini error answers, shaped exactly as upstream sends them.

Each builder returns a `Fault`: a status code plus the Google error object (or a raw body).
The server renders it in the caller's dialect: the native envelope `{"error": {...}}`, or the
same envelope inside a JSON array on the OpenAI-compatible endpoint. A `Fault` can be queued
on a `FakeGemini` to answer the next calls of a key, or sent in-band in the middle of a stream.
"""

import json
from dataclasses import dataclass

JSON_TYPE = "application/json; charset=UTF-8"
SERVICE = "generativelanguage.googleapis.com"
RPC = "type.googleapis.com/google.rpc."
RATE_LIMITS_URL = "https://ai.google.dev/gemini-api/docs/rate-limits"
KEY_INVALID_MESSAGE = "API key not valid. Please pass a valid API key."
KEY_EXPIRED_MESSAGE = "API key expired. Please renew the API key."
CONSOLE = "https://console.developers.google.com"
UNREGISTERED_MESSAGE = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
QUOTA_WINDOWS = {
    "minute": ("GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
               "generativelanguage.googleapis.com/generate_content_free_tier_requests", "10"),
    "day": ("GenerateRequestsPerDayPerProjectPerModel-FreeTier",
            "generativelanguage.googleapis.com/generate_content_free_tier_requests", "250"),
    "input_tokens": ("GenerateContentInputTokensPerModelPerMinute-FreeTier",
                     "generativelanguage.googleapis.com/generate_content_free_tier_input_token_count",
                     "250000"),
}


@dataclass(frozen=True)
class Fault:
    """A scripted non-success answer.

    :param error: the inner Google error object (`code`, `message`, `status`, `details`).
    :param raw: a body sent verbatim instead of the JSON envelope (non-JSON or empty bodies).
    """

    status: int
    error: dict | None = None
    raw: bytes | None = None
    content_type: str = JSON_TYPE

    def body(self, dialect: str = "native", pretty: bool = True) -> bytes:
        """Render the body the way upstream does for `dialect` ("native" or "openai").

        `pretty=False` is what a caller gets with the `prettyPrint=false` system parameter.
        """
        if self.raw is not None:
            return self.raw
        envelope = {"error": self.error}
        payload = [envelope] if dialect == "openai" else envelope
        if pretty:
            return json.dumps(payload, indent=2).encode()
        return json.dumps(payload, separators=(",", ":")).encode()

    def event(self) -> dict:
        """The envelope as one in-band stream event (`{"error": {...}}`)."""
        return {"error": self.error or {"code": self.status, "message": "", "status": "UNKNOWN"}}


def error(code: int, status: str, message: str, details: list | None = None) -> Fault:
    """Any Google-style error; `details` is left out when empty, as upstream does."""
    inner = {"code": code, "message": message, "status": status}
    if details:
        inner["details"] = details
    return Fault(code, inner)


def error_info(reason: str, **metadata: str) -> dict:
    """A `google.rpc.ErrorInfo` detail for the Generative Language service."""
    return {"@type": RPC + "ErrorInfo", "reason": reason, "domain": "googleapis.com",
            "metadata": {"service": SERVICE, **metadata}}


def bad_request(message: str) -> dict:
    """A `google.rpc.BadRequest` detail with one field violation."""
    return {"@type": RPC + "BadRequest", "fieldViolations": [{"description": message}]}


def quota_exceeded(retry_delay: str | None = "37s", window: str = "minute",
                   model: str = "gemini-2.5-flash") -> Fault:
    """429 RESOURCE_EXHAUSTED with QuotaFailure, Help and (if `retry_delay`) RetryInfo.

    :param retry_delay: a protobuf Duration such as "37s" or "1.5s"; None leaves RetryInfo out.
    :param window: "minute", "day" or "input_tokens" -- which quotaId was hit.
    """
    quota_id, metric, value = QUOTA_WINDOWS[window]
    details = [
        {"@type": RPC + "QuotaFailure", "violations": [{
            "quotaMetric": metric, "quotaId": quota_id,
            "quotaDimensions": {"location": "global", "model": model}, "quotaValue": value}]},
        {"@type": RPC + "Help", "links": [
            {"description": "Learn more about Gemini API quotas", "url": RATE_LIMITS_URL}]},
    ]
    if retry_delay is not None:
        details.append({"@type": RPC + "RetryInfo", "retryDelay": retry_delay})
    message = ("You exceeded your current quota, please check your plan and billing details. "
               f"For more information on this error, head to: {RATE_LIMITS_URL}.")
    return error(429, "RESOURCE_EXHAUSTED", message, details)


def resource_exhausted() -> Fault:
    """429 RESOURCE_EXHAUSTED without any details (no retry hint at all)."""
    return error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).")


def localized(message: str) -> dict:
    """A `google.rpc.LocalizedMessage` detail repeating `message` in en-US."""
    return {"@type": RPC + "LocalizedMessage", "locale": "en-US", "message": message}


def help_link(description: str, url: str) -> dict:
    """A `google.rpc.Help` detail with one link."""
    return {"@type": RPC + "Help", "links": [{"description": description, "url": url}]}


def key_invalid(message: str = KEY_INVALID_MESSAGE) -> Fault:
    """400 INVALID_ARGUMENT with ErrorInfo reason API_KEY_INVALID (the bad-key answer)."""
    return error(400, "INVALID_ARGUMENT", message, [error_info("API_KEY_INVALID"), localized(message)])


def key_expired(reason: str = "API_KEY_INVALID") -> Fault:
    """400 INVALID_ARGUMENT "API key expired. Please renew the API key."

    Upstream really sends ErrorInfo reason API_KEY_INVALID with this message (reported in
    public issue threads); pass `reason="API_KEY_EXPIRED"` to test a classifier against
    that hypothetical reason too.
    """
    return error(400, "INVALID_ARGUMENT", KEY_EXPIRED_MESSAGE,
                 [error_info(reason), localized(KEY_EXPIRED_MESSAGE)])


def key_leaked() -> Fault:
    """403 PERMISSION_DENIED for a key Google reported as leaked."""
    message = "Your API key was reported as leaked. Please use another API key."
    return error(403, "PERMISSION_DENIED", message)


def key_service_blocked(method: str = "GenerateContent", version: str = "v1beta",
                        project: str = "123") -> Fault:
    """403 PERMISSION_DENIED with ErrorInfo reason API_KEY_SERVICE_BLOCKED."""
    message = (f"Requests to this API {SERVICE} method google.ai.generativelanguage.{version}."
               f"GenerativeService.{method} are blocked.")
    detail = error_info("API_KEY_SERVICE_BLOCKED", consumer=f"projects/{project}")
    return error(403, "PERMISSION_DENIED", message, [detail])


def service_disabled(project: str = "123") -> Fault:
    """403 PERMISSION_DENIED with ErrorInfo reason SERVICE_DISABLED (API not enabled)."""
    url = f"{CONSOLE}/apis/api/{SERVICE}/overview?project={project}"
    message = (f"Generative Language API has not been used in project {project} before or it is "
               f"disabled. Enable it by visiting {url} then retry. If you enabled this API "
               "recently, wait a few minutes for the action to propagate to our systems and retry.")
    detail = error_info("SERVICE_DISABLED", consumer=f"projects/{project}",
                        serviceTitle="Generative Language API", containerInfo=project,
                        activationUrl=url)
    return error(403, "PERMISSION_DENIED", message,
                 [detail, localized(message), help_link("Google developers console API activation", url)])


def billing_disabled(project: str = "123") -> Fault:
    """403 PERMISSION_DENIED with ErrorInfo reason BILLING_DISABLED."""
    url = f"{CONSOLE}/billing/enable?project={project}"
    message = (f"This API method requires billing to be enabled. Please enable billing on project "
               f"#{project} by visiting {url} then retry. If you enabled billing for this project "
               "recently, wait a few minutes for the action to propagate to our systems and retry.")
    detail = error_info("BILLING_DISABLED", consumer=f"projects/{project}", containerInfo=project)
    return error(403, "PERMISSION_DENIED", message,
                 [detail, localized(message), help_link("Google developers console billing", url)])


def consumer_suspended(key: str = "AIzaSyFAKE-suspended", project: str = "123") -> Fault:
    """403 PERMISSION_DENIED with ErrorInfo reason CONSUMER_SUSPENDED.

    Upstream puts the key itself in the message and metadata: a relay must not echo it.
    """
    message = f"Permission denied: Consumer 'api_key:{key}' has been suspended."
    detail = error_info("CONSUMER_SUSPENDED", consumer=f"projects/{project}",
                        containerInfo=f"api_key:{key}")
    return error(403, "PERMISSION_DENIED", message, [detail, localized(message)])


def key_referrer_blocked(referrer: str = "<empty>", project: str = "123") -> Fault:
    """403 PERMISSION_DENIED with ErrorInfo reason API_KEY_HTTP_REFERRER_BLOCKED."""
    message = f"Requests from referer {referrer} are blocked."
    detail = error_info("API_KEY_HTTP_REFERRER_BLOCKED", consumer=f"projects/{project}")
    return error(403, "PERMISSION_DENIED", message, [detail, localized(message)])


def key_ip_blocked(ip: str = "203.0.113.7", project: str = "123") -> Fault:
    """403 PERMISSION_DENIED with ErrorInfo reason API_KEY_IP_ADDRESS_BLOCKED."""
    message = (f"The provided API key has an IP address restriction. The originating IP address "
               f"of the call ({ip}) violates this restriction.")
    detail = error_info("API_KEY_IP_ADDRESS_BLOCKED", consumer=f"projects/{project}")
    return error(403, "PERMISSION_DENIED", message, [detail, localized(message)])


def file_denied(file_id: str) -> Fault:
    """403 for a `files/{file_id}` the calling key's project does not own (or that does not exist)."""
    file_id = file_id.removeprefix("files/")
    return error(403, "PERMISSION_DENIED",
                 f"You do not have permission to access the File {file_id} or it may not exist.")


def cached_content_denied() -> Fault:
    """403 for a `cachedContents/...` the calling key's project does not own (or that does not exist)."""
    return error(403, "PERMISSION_DENIED", "CachedContent not found (or permission denied)")


def upload_not_found() -> Fault:
    """404 on an upload session URL whose upload_id is unknown, finalized or cancelled."""
    return not_found("Upload session not found: the upload_id is unknown, or the upload was finalized "
                     "or cancelled.")


def upload_offset_mismatch(received: int, offset: str | None) -> Fault:
    """400 for a chunk whose `X-Goog-Upload-Offset` is not the byte count received so far."""
    return invalid_argument(f"Invalid X-Goog-Upload-Offset {offset!r}: the upload has received {received} "
                            "bytes, so the next chunk must start there.", with_details=False)


def upload_size_mismatch(declared: int, received: int) -> Fault:
    """400 when an upload ends with another byte count than its start declared."""
    return invalid_argument(f"The upload declared {declared} bytes (X-Goog-Upload-Header-Content-Length) "
                            f"but {received} bytes were received.", with_details=False)


def already_exists(name: str) -> Fault:
    """409 ALREADY_EXISTS for a resource name that is taken."""
    return error(409, "ALREADY_EXISTS", f"{name} already exists.")


def unregistered_caller() -> Fault:
    """403 PERMISSION_DENIED sent when a request carries no key at all."""
    return error(403, "PERMISSION_DENIED", UNREGISTERED_MESSAGE)


def oauth_expected() -> Fault:
    """401 UNAUTHENTICATED: a bare `Authorization: Bearer` is taken as an OAuth token on native paths."""
    message = ("Request had invalid authentication credentials. Expected OAuth 2 access token, "
               "login cookie or other valid authentication credential. See "
               "https://developers.google.com/identity/sign-in/web/devconsole-project.")
    return error(401, "UNAUTHENTICATED", message, [error_info("ACCESS_TOKEN_TYPE_UNSUPPORTED")])


def unsupported_alt() -> Fault:
    """400 for an `alt` system parameter the method cannot answer in (media, proto, ...)."""
    return invalid_argument("Request contains an invalid argument.", with_details=False)


def location_not_supported() -> Fault:
    """400 FAILED_PRECONDITION: the key's account cannot be served from here."""
    return error(400, "FAILED_PRECONDITION", "User location is not supported for the API use.")


def invalid_argument(message: str, with_details: bool = True) -> Fault:
    """400 INVALID_ARGUMENT about the request itself (not about the key)."""
    return error(400, "INVALID_ARGUMENT", message, [bad_request(message)] if with_details else None)


def not_found(message: str) -> Fault:
    """404 NOT_FOUND with the given message."""
    return error(404, "NOT_FOUND", message)


def internal() -> Fault:
    """500 INTERNAL, as upstream words it."""
    message = ("An internal error has occurred. Please retry or report in "
               "https://developers.generativeai.google/guide/troubleshooting")
    return error(500, "INTERNAL", message)


def unavailable(message: str = "The model is overloaded. Please try again later.") -> Fault:
    """503 UNAVAILABLE (model overloaded)."""
    return error(503, "UNAVAILABLE", message)


def deadline_exceeded() -> Fault:
    """504 DEADLINE_EXCEEDED."""
    return error(504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete.")


def bad_gateway_html() -> Fault:
    """502 with an HTML body, as a load balancer in front of upstream answers."""
    body = b"<html><head><title>502 Bad Gateway</title></head><body>Bad Gateway</body></html>"
    return Fault(502, raw=body, content_type="text/html; charset=UTF-8")


def empty_ok() -> Fault:
    """200 with an empty body: a success status that carries nothing parseable."""
    return Fault(200, raw=b"")
