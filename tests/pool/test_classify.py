"""Reading upstream answers: only Google naming the key takes a key out; the request's faults never do.

Every body here is built in this file, shaped as Google sends it (see
docs/gemini-protocol.md §3), and each is read both as the native envelope and wrapped in
the JSON array of the OpenAI-compatible endpoint.
"""

import json
from datetime import UTC, datetime

import pytest

from vault.pool.classify import Verdict, classify_response, next_daily_reset, parse_duration

NOW = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)
RPC = "type.googleapis.com/google.rpc."
KEY_INVALID = "API key not valid. Please pass a valid API key."
KEY_EXPIRED = "API key expired. Please renew the API key."
LEAKED = "Your API key was reported as leaked. Please use another API key."
SERVICE_BLOCKED = ("Requests to this API generativelanguage.googleapis.com method "
                   "google.ai.generativelanguage.v1beta.GenerativeService.GenerateContent are blocked.")
REFERRER_BLOCKED = "Requests from referer <empty> are blocked."
IP_BLOCKED = ("The provided API key has an IP address restriction. The originating IP address of the call "
              "(203.0.113.7) violates this restriction.")
ANDROID_BLOCKED = "Requests from this Android client application <empty> are blocked."
IOS_BLOCKED = "Requests from this iOS client application <empty> are blocked."
SERVICE_DISABLED = ("Generative Language API has not been used in project 123 before or it is disabled. "
                    "Enable it by visiting the Google Cloud console then retry.")
SUSPENDED = "Permission denied: Consumer 'projects/123' has been suspended."
BILLING = ("This API method requires billing to be enabled. Please enable billing on project #123 by visiting "
           "https://console.developers.google.com/billing/enable?project=123 then retry.")
BILLING_ACCOUNT = "Billing account for project '123' is not found. Billing must be enabled for activation."
FOREIGN_FILE = "You do not have permission to access the File abc123 or it may not exist."
UNREGISTERED = ("Method doesn't allow unregistered callers (callers without established identity). "
                "Please use API Key or other form of API consumer identity to call this API.")
OAUTH_ONLY = ("API keys are not supported by this API. Expected OAuth2 access token or other authentication "
              "credentials that assert a principal.")
INTERNAL = ("An internal error has occurred. Please retry or report in "
            "https://developers.generativeai.google/guide/troubleshooting")


def error(code: int, status: str, message: str, reason: str | None = None) -> dict:
    """A Google error object, with an ErrorInfo detail when `reason` is given."""
    inner = {"code": code, "message": message, "status": status}
    if reason:
        inner["details"] = [
            {"@type": RPC + "ErrorInfo", "reason": reason, "domain": "googleapis.com",
             "metadata": {"service": "generativelanguage.googleapis.com", "consumer": "projects/123"}},
            {"@type": RPC + "LocalizedMessage", "locale": "en-US", "message": message},
        ]
    return inner


def body(inner: dict | bytes, wrapped: bool = False) -> bytes:
    if isinstance(inner, bytes):
        return inner
    envelope = {"error": inner}
    return json.dumps([envelope] if wrapped else envelope, indent=2).encode()


def classify(status, payload, retry_after=None, wrapped=False):
    return classify_response(status, body(payload, wrapped), retry_after, NOW)


KEY_REJECTED = [
    (400, error(400, "INVALID_ARGUMENT", KEY_INVALID, "API_KEY_INVALID")),
    (400, error(400, "INVALID_ARGUMENT", "API Key not found. Please pass a valid API key.", "API_KEY_INVALID")),
    (400, error(400, "INVALID_ARGUMENT", KEY_INVALID)),
    (403, error(403, "PERMISSION_DENIED", KEY_INVALID, "API_KEY_INVALID")),
    (400, error(400, "INVALID_ARGUMENT", KEY_EXPIRED, "API_KEY_INVALID")),
    (400, error(400, "INVALID_ARGUMENT", KEY_EXPIRED, "API_KEY_EXPIRED")),
    (400, error(400, "INVALID_ARGUMENT", KEY_EXPIRED)),
    (403, error(403, "PERMISSION_DENIED", KEY_EXPIRED, "API_KEY_EXPIRED")),
    (403, error(403, "PERMISSION_DENIED", LEAKED)),
    (400, error(400, "INVALID_ARGUMENT", LEAKED)),
    (403, error(403, "PERMISSION_DENIED", SERVICE_BLOCKED, "API_KEY_SERVICE_BLOCKED")),
    (403, error(403, "PERMISSION_DENIED", SERVICE_BLOCKED)),
    (403, error(403, "PERMISSION_DENIED", REFERRER_BLOCKED, "API_KEY_HTTP_REFERRER_BLOCKED")),
    (403, error(403, "PERMISSION_DENIED", REFERRER_BLOCKED)),
    (403, error(403, "PERMISSION_DENIED", IP_BLOCKED, "API_KEY_IP_ADDRESS_BLOCKED")),
    (403, error(403, "PERMISSION_DENIED", IP_BLOCKED)),
    (403, error(403, "PERMISSION_DENIED", ANDROID_BLOCKED, "API_KEY_ANDROID_APP_BLOCKED")),
    (403, error(403, "PERMISSION_DENIED", IOS_BLOCKED, "API_KEY_IOS_APP_BLOCKED")),
    (403, error(403, "PERMISSION_DENIED", SERVICE_DISABLED, "SERVICE_DISABLED")),
    (403, error(403, "PERMISSION_DENIED", SERVICE_DISABLED)),
    (403, error(403, "PERMISSION_DENIED", SUSPENDED, "CONSUMER_SUSPENDED")),
    (403, error(403, "PERMISSION_DENIED", SUSPENDED)),
    (403, error(403, "PERMISSION_DENIED", BILLING, "BILLING_DISABLED")),
    (403, error(403, "PERMISSION_DENIED", BILLING)),
    (403, error(403, "PERMISSION_DENIED", BILLING_ACCOUNT)),
    (400, error(400, "FAILED_PRECONDITION", BILLING, "BILLING_DISABLED")),
    (401, error(401, "UNAUTHENTICATED", KEY_INVALID, "API_KEY_INVALID")),
]

CLIENT_ERRORS = [
    # About the request.
    (400, error(400, "INVALID_ARGUMENT", 'Invalid JSON payload received. Unknown name "reasoning": Cannot find '
                                         'field.')),
    (400, error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.")),
    (400, error(400, "INVALID_ARGUMENT", "* GenerateContentRequest.contents: contents is not specified")),
    (400, error(400, "FAILED_PRECONDITION", "Precondition check failed.")),
    (404, error(404, "NOT_FOUND", "models/gemini-foo is not found for API version v1beta, or is not supported "
                                  "for generateContent.")),
    (413, b"Request Entity Too Large"),
    # About a resource the request names (another project's file or cached content).
    (403, error(403, "PERMISSION_DENIED", FOREIGN_FILE)),
    (403, error(403, "PERMISSION_DENIED", "CachedContent not found (or permission denied)")),
    (404, error(404, "NOT_FOUND", "File abc123 not found.")),
    (403, error(403, "PERMISSION_DENIED", "The caller does not have permission")),
    (403, error(403, "PERMISSION_DENIED", "Permission denied on resource.", "IAM_PERMISSION_DENIED")),
    # Key words a caller can make Google echo (a field or resource name) are not Google naming the key.
    (400, error(400, "INVALID_ARGUMENT", 'Invalid JSON payload received. Unknown name "API key not valid": x')),
    (403, error(403, "PERMISSION_DENIED", "You do not have permission to access the File billing or it may not "
                                          "exist.")),
    (403, error(403, "PERMISSION_DENIED", "You do not have permission to access the File api-key-expired or it "
                                          "may not exist.")),
    (404, error(404, "NOT_FOUND", KEY_INVALID, "API_KEY_INVALID")),
]

RETRIED_WITHOUT_BLAME = [
    (401, error(401, "UNAUTHENTICATED", OAUTH_ONLY, "CREDENTIALS_MISSING")),
    (401, error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.",
                "ACCESS_TOKEN_TYPE_UNSUPPORTED")),
    (401, b""),
    (403, error(403, "PERMISSION_DENIED", UNREGISTERED)),
    (403, error(403, "PERMISSION_DENIED", "The request is missing a valid API key.")),
]

STRIKES = [
    (500, error(500, "INTERNAL", INTERNAL)),
    (503, error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")),
    (504, error(504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete.")),
    (502, b"<html><head><title>502 Bad Gateway</title></head><body>Bad Gateway</body></html>"),
    (500, error(500, "INTERNAL", KEY_INVALID, "API_KEY_INVALID")),
]

ACCOUNT_CANNOT_SERVE = [
    (400, error(400, "FAILED_PRECONDITION", "User location is not supported for the API use.")),
    (400, error(400, "FAILED_PRECONDITION", "Gemini API free tier is not available in your country. Please enable "
                                            "billing on your project in Google AI Studio.")),
]


def label(case) -> str:
    status, payload = case
    if isinstance(payload, bytes):
        return f"{status}-raw"
    reason = payload.get("details", [{}])[0].get("reason", "")
    return f"{status}-{payload['status']}-{reason or payload['message'][:32]}"


envelopes = pytest.mark.parametrize("wrapped", [False, True], ids=["native", "openai-array"])


def cases(table):
    return pytest.mark.parametrize(("status", "payload"), table, ids=[label(case) for case in table])


@cases(KEY_REJECTED)
@envelopes
def test_the_key_named_by_google_is_rejected(status, payload, wrapped):
    outcome = classify(status, payload, wrapped=wrapped)
    assert outcome.verdict is Verdict.KEY_REJECTED
    assert not outcome.strike


@cases(CLIENT_ERRORS)
@envelopes
def test_the_callers_errors_are_the_callers(status, payload, wrapped):
    outcome = classify(status, payload, wrapped=wrapped)
    assert outcome.verdict is Verdict.CLIENT_ERROR
    assert outcome.status == status


@cases(RETRIED_WITHOUT_BLAME)
@envelopes
def test_a_credential_the_upstream_did_not_take_is_our_bug(status, payload, wrapped):
    outcome = classify(status, payload, wrapped=wrapped)
    assert outcome.verdict is Verdict.TRANSIENT
    assert not outcome.strike, "no strike against the key"


@cases(STRIKES)
@envelopes
def test_server_errors_fail_over_and_count_toward_the_breaker(status, payload, wrapped):
    outcome = classify(status, payload, wrapped=wrapped)
    assert outcome.verdict is Verdict.TRANSIENT and outcome.strike


@cases(ACCOUNT_CANNOT_SERVE)
@envelopes
def test_an_account_that_cannot_serve_is_counted(status, payload, wrapped):
    assert classify(status, payload, wrapped=wrapped).verdict is Verdict.KEY_FAILURE


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("payload", [b"", b"<html><body>Moved</body></html>", error(302, "FOUND", KEY_INVALID)])
def test_a_redirect_is_never_relayed(status, payload):
    outcome = classify(status, payload)
    assert outcome.verdict is Verdict.REDIRECTED and not outcome.strike


@envelopes
def test_rate_limits(wrapped):
    quota = error(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota, please check your plan and billing "
                                             "details.")
    quota["details"] = [
        {"@type": RPC + "QuotaFailure", "violations": [
            {"quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},
        {"@type": RPC + "RetryInfo", "retryDelay": "37s"},
    ]
    limited = classify(429, quota, wrapped=wrapped)
    assert limited.verdict is Verdict.RATE_LIMITED and limited.retry_after == 37
    bare = classify(429, error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
                    wrapped=wrapped)
    assert bare.verdict is Verdict.RATE_LIMITED and bare.retry_after is None


def test_retry_delay_and_daily_quota():
    def quota(retry_delay, quota_id):
        inner = error(429, "RESOURCE_EXHAUSTED", "quota")
        inner["details"] = [{"@type": RPC + "QuotaFailure", "violations": [{"quotaId": quota_id}]},
                            {"@type": RPC + "RetryInfo", "retryDelay": retry_delay}]
        return inner

    minute = quota("1.5s", "GenerateRequestsPerMinutePerProjectPerModel-FreeTier")
    day = quota("10s", "GenerateRequestsPerDayPerProjectPerModel-FreeTier")
    assert classify(429, minute).retry_after == 1.5
    assert classify(429, day).daily_quota is True
    assert classify(429, minute).daily_quota is False


def test_retry_after_header_when_the_body_has_no_hint():
    assert classify(429, b"{}", retry_after="12").retry_after == 12
    assert classify(429, b"{}", retry_after="Wed, 25 Nov 2026 20:00:30 GMT").retry_after == 30
    assert classify(429, b"{}").retry_after is None


@pytest.mark.parametrize(("status", "payload", "summary"), [
    (400, error(400, "INVALID_ARGUMENT", KEY_INVALID, "API_KEY_INVALID"), "400 API_KEY_INVALID"),
    (403, error(403, "PERMISSION_DENIED", LEAKED), "403 PERMISSION_DENIED: key reported as leaked"),
    (403, error(403, "PERMISSION_DENIED", SUSPENDED), "403 PERMISSION_DENIED: consumer suspended"),
    (403, error(403, "PERMISSION_DENIED", FOREIGN_FILE), "403 PERMISSION_DENIED"),
])
def test_summaries_never_carry_the_message_text(status, payload, summary):
    assert classify(status, payload).summary == summary


@pytest.mark.parametrize(("raw", "seconds"), [("37s", 37), ("38.804097346s", 38.804097346), ("soon", None), (5, None)])
def test_parse_duration(raw, seconds):
    assert parse_duration(raw) == seconds


def test_daily_reset_is_pacific_midnight():
    reset = next_daily_reset(NOW)
    assert reset.utcoffset().total_seconds() in (-8 * 3600, -7 * 3600)
    assert (reset.hour, reset.minute) == (0, 0) and reset > NOW
