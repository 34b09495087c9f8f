"""From a resolved call and what the client sent to the exact request Google gets, and back.

Plain functions over plain values (no Flask request): the upstream request is built from
the allow-listed call, the parsed body and two identification headers — never from the
client's raw path, query or headers. Upstream errors are put into the caller's dialect here.

Native bodies go upstream as the bytes the client sent, unless the Vault lowers the output
cap to what the caller's balance covers: then the body is re-serialised from what was parsed,
with `generationConfig.maxOutputTokens` (OpenAI: `max_tokens` / `max_completion_tokens`) set.
"""

import re
from dataclasses import dataclass
from typing import Any

from vault.errors import BadRequest
from vault.inbound import encode_json
from vault.pool.classify import google_error
from vault.proxy.images import image_body
from vault.proxy.routes import IMAGES, Call, checked_model
from vault.security import mask_secret
from vault.upstream.client import UpstreamRequest

# The SDKs name themselves in these; Google's logs show them. Nothing else of the client's
# headers is forwarded (credentials, cookies, hop-by-hop, X-HTTP-Method-Override, field masks …).
IDENTIFICATION_HEADERS = {"user-agent": "User-Agent", "x-goog-api-client": "x-goog-api-client"}
PRINTABLE = re.compile(r"[\x20-\x7e]{1,256}")
GOOGLE_KEY = re.compile(r"AIza[0-9A-Za-z_\-]{20,}")
# Google's error details that may reach a caller; ErrorInfo metadata names pool projects.
SAFE_DETAIL_TYPES = ("google.rpc.BadRequest", "google.rpc.Help", "google.rpc.LocalizedMessage",
                     "google.rpc.RetryInfo", "google.rpc.PreconditionFailure")
OPENAI_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                      404: "not_found_error", 409: "invalid_request_error", 413: "invalid_request_error",
                      429: "rate_limit_error"}


@dataclass(frozen=True)
class Inbound:
    """What the proxy core needs of the client's request, read once at the door."""

    call: Call
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""
    payload: dict | None = None
    large: bool = False  # over `INLINE_JSON_TOKENS` elements: parsed and encoded off the hub


def identification_headers(headers: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """The client's `User-Agent` and `x-goog-api-client`, if they are short printable text."""
    kept: dict[str, str] = {}
    for name, value in headers:
        canonical = IDENTIFICATION_HEADERS.get(name.lower())
        if canonical and PRINTABLE.fullmatch(value):
            kept[canonical] = value
    return kept


def upstream_request(inbound: Inbound, output_cap: int | None = None) -> UpstreamRequest:
    """The request Google gets for `inbound` (without any key: the failover loop adds one),
    with its output cap lowered to `output_cap` tokens per candidate when given."""
    call, action = inbound.call, inbound.call.action
    headers = identification_headers(inbound.headers)
    body, model, streaming, extras = b"", call.model, action.streaming, {}
    if action.has_body:
        headers["Content-Type"] = "application/json"
        body = inbound.body
        if action is IMAGES:  # its own allow-list of fields; `extras["images"]`: how many its hold covers
            body, model, images = image_body(inbound.payload or {})
            extras = {"images": images}
        elif action.dialect == "openai":
            body, model, streaming, extras = openai_body(inbound.payload or {}, inbound.large, output_cap)
        elif output_cap is not None:
            body = encode_json(with_native_cap(inbound.payload or {}, output_cap), inbound.large)
    return UpstreamRequest(method=action.method, path=call.upstream_path, query=list(call.query), headers=headers,
                           body=body, bearer_auth=action.dialect == "openai", model=model, streaming=streaming,
                           dialect=action.dialect, extras=extras)


def with_native_cap(payload: dict, cap: int) -> dict:
    """A native request with its output cap set to `cap`, in the spelling the client used."""
    name = "generationConfig"
    if "generation_config" in payload and name not in payload:
        name = "generation_config"
    config = payload.get(name) if isinstance(payload.get(name), dict) else {}
    fields = [field for field in ("maxOutputTokens", "max_output_tokens") if field in config] or ["maxOutputTokens"]
    return payload | {name: config | dict.fromkeys(fields, cap)}


def with_openai_cap(payload: dict, cap: int) -> dict:
    """An OpenAI request with `max_tokens` (and `max_completion_tokens`, if sent) set to `cap`."""
    fields = [field for field in ("max_completion_tokens", "max_tokens") if field in payload] or ["max_tokens"]
    return payload | dict.fromkeys(fields, cap)


def openai_body(payload: dict, large: bool = False, output_cap: int | None = None) -> tuple[bytes, str, bool, dict]:
    """(body, model, streaming, extras) of an OpenAI-compatible request, re-serialised from what was parsed.

    Re-serialising means the upstream reads exactly what the Vault read and billed (no
    duplicate keys). A streamed chat that did not ask for usage gets it asked for (the Vault
    bills from it) and stripped again on the way back; `output_cap` lowers its output cap.
    """
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' is required and must be a string.")
    model = checked_model(model.removeprefix("models/"))
    streaming = payload.get("stream") is True
    options = payload.get("stream_options")
    extras = {}
    if streaming and not (isinstance(options, dict) and options.get("include_usage") is True):
        payload = payload | {"stream_options": (options if isinstance(options, dict) else {}) | {"include_usage": True}}
        extras = {"strip_usage": True}
    if output_cap is not None:
        payload = with_openai_cap(payload, output_cap)
    return encode_json(payload, large), model, streaming, extras


def without_keys(body: bytes, secret: str) -> bytes:
    """`body` with the pool key that got it, and anything shaped like a Google API key, masked.

    Google names the key in some answers (`consumer 'api_key:AIza…'`); no caller may see it.
    """
    text = body.decode("utf-8", errors="replace")
    if secret:
        text = text.replace(secret, mask_secret(secret))
    return GOOGLE_KEY.sub(lambda found: mask_secret(found.group(0)), text).encode()


def client_error_body(status: int, body: bytes, dialect: str, secret: str = "") -> dict:
    """An upstream client error (4xx) in the caller's dialect, with Google's message (keys masked)."""
    error = google_error(without_keys(body, secret))
    message = error.get("message") if isinstance(error.get("message"), str) else "The upstream refused the request."
    google_status = error.get("status") if isinstance(error.get("status"), str) else "INVALID_ARGUMENT"
    if dialect == "openai":
        return {"error": {"message": message, "type": OPENAI_ERROR_TYPES.get(status, "invalid_request_error"),
                          "code": google_status.lower(), "param": None}}
    rendered: dict[str, Any] = {"code": status, "message": message, "status": google_status}
    details = [d for d in error.get("details") or [] if isinstance(d, dict)
               and str(d.get("@type", "")).endswith(SAFE_DETAIL_TYPES)]
    if details:
        rendered["details"] = details
    return {"error": rendered}
