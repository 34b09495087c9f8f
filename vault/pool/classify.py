"""What an upstream answer means for the key that got it -- and only the key's own faults count.

Decided from the HTTP status *and* Google's error body (`error.status`, `details[]` with
`ErrorInfo.reason`, `RetryInfo.retryDelay`, `QuotaFailure` quota ids, and a few messages
Google sends without a reason). The OpenAI-compatible endpoint wraps the same envelope in a
JSON array; both forms are read.

| upstream answer                                                  | verdict                    |
|------------------------------------------------------------------|----------------------------|
| 3xx                                                              | REDIRECTED (502, no blame) |
| 429                                                              | RATE_LIMITED               |
| 5xx (and timeouts, refused connections, empty 200s)              | TRANSIENT, a breaker strike|
| 400/401/403 naming the key: a key reason or a key message        | KEY_REJECTED               |
| 401, UNAUTHENTICATED, "unregistered callers" (our bug)           | TRANSIENT, no strike       |
| 400 FAILED_PRECONDITION: location / free tier unavailable        | KEY_FAILURE                |
| any other 4xx -- the request, or a file/cache it names           | CLIENT_ERROR               |

A request can name things it has no right to (another project's `fileData.fileUri` or
`cachedContent`); Google answers those with a plain 403 PERMISSION_DENIED, which must never
count against the key, or one caller could disable the whole pool. So a key is blamed only
when Google names the key: an `ErrorInfo.reason` about it, or a message anchored at the
start of `error.message` (resource names, which callers choose, appear only mid-message).
"""

import enum
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

# Gemini's daily quotas reset at midnight Pacific time.
QUOTA_RESET_ZONE = ZoneInfo("America/Los_Angeles")
KEY_FAULT_STATUSES = {400, 401, 403}
KEY_FAULT_REASONS = frozenset({
    "API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED", "API_KEY_HTTP_REFERRER_BLOCKED",
    "API_KEY_IP_ADDRESS_BLOCKED", "API_KEY_ANDROID_APP_BLOCKED", "API_KEY_IOS_APP_BLOCKED",
    "SERVICE_DISABLED", "CONSUMER_SUSPENDED", "BILLING_DISABLED",
})
# Google's words about the key when it sends no reason; each is anchored at the message start.
KEY_FAULT_MESSAGES = tuple((re.compile(pattern, re.IGNORECASE), label) for pattern, label in (
    (r"^api key not (valid|found)", "key not valid"),
    (r"^api key expired", "key expired"),
    (r"^(your )?api key (was )?reported as leaked", "key reported as leaked"),
    (r"^requests (to this api|from (referer|this))\b.*\bare blocked", "key blocked"),
    (r"^the provided api key has an ip address restriction", "key blocked"),
    (r"^generative language api has not been used in project", "service disabled"),
    (r"^permission denied: consumer \S+ has been suspended", "consumer suspended"),
    (r"^(this api method requires billing|(the )?billing account|billing (is|has been) disabled"
     r"|billing (must|has to) be enabled)", "billing disabled"),
))
# The upstream saw no usable credential from us: no key, or a key where it wants OAuth.
OUR_FAULT_MESSAGES = re.compile(r"^(method doesn't allow unregistered callers|the request is missing a valid api key"
                                r"|api keys are not supported)", re.IGNORECASE)
ACCOUNT_CANNOT_SERVE = re.compile(r"^(user location is not supported|gemini api free tier is not available)",
                                  re.IGNORECASE)
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


class Verdict(enum.Enum):
    """What to do after an upstream answer (the value labels the attempts metric)."""

    OK = "ok"                      # relay it
    CLIENT_ERROR = "client_error"  # the request itself is wrong: relay it once, no key changes
    RATE_LIMITED = "rate_limited"  # cool the key for this model, try another
    KEY_REJECTED = "key_rejected"  # Google names the key as invalid/blocked: disable until an admin acts
    KEY_FAILURE = "key_failure"    # the key's account cannot serve: count it, try another
    TRANSIENT = "transient"        # upstream trouble (5xx, timeout, empty) or our bug: try another
    REDIRECTED = "redirected"      # a 3xx: never followed, never relayed: 502, no key changes
    SUSPECT = "suspect"            # a second key fault in one request: the request is suspect (failover)


KEY_FAULTS = frozenset({Verdict.KEY_REJECTED, Verdict.KEY_FAILURE})


@dataclass(frozen=True)
class Classification:
    """A verdict with what is needed to act on it. `summary` never holds a secret."""

    verdict: Verdict
    summary: str
    status: int = 0
    retry_after: float | None = None
    daily_quota: bool = False
    timed_out: bool = False
    strike: bool = False  # an upstream failure that counts toward the key's circuit breaker


def google_error(body: bytes) -> dict:
    """The `error` object of a Google envelope (plain or in an array), or {}."""
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    if isinstance(parsed, list) and parsed:
        parsed = parsed[0]
    error = parsed.get("error") if isinstance(parsed, dict) else None
    return error if isinstance(error, dict) else {}


def details_of(error: dict, type_suffix: str) -> list[dict]:
    """The `details[]` entries whose `@type` ends with `type_suffix`."""
    details = error.get("details")
    if not isinstance(details, list):
        return []
    return [d for d in details if isinstance(d, dict) and str(d.get("@type", "")).endswith(type_suffix)]


def parse_duration(value: object) -> float | None:
    """A protobuf Duration such as `"37s"` or `"1.5s"` in seconds."""
    match = DURATION.match(value) if isinstance(value, str) else None
    return float(match.group(1)) if match else None


def retry_after_header(value: str | None, now: datetime) -> float | None:
    """`Retry-After` as seconds (delta or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.replace(".", "", 1).isdigit():
        return float(value)
    try:
        return max((parsedate_to_datetime(value) - now).total_seconds(), 0.0)
    except (TypeError, ValueError):
        return None


def next_daily_reset(now: datetime) -> datetime:
    """The next midnight in Pacific time, when per-day quotas refill."""
    local = now.astimezone(QUOTA_RESET_ZONE)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight


def classify_rate_limit(error: dict, retry_after: str | None, now: datetime) -> Classification:
    """A 429: how long the key should rest for this model."""
    quota_ids = [
        str(violation.get("quotaId", ""))
        for failure in details_of(error, "QuotaFailure")
        for violation in failure.get("violations") or []
        if isinstance(violation, dict)
    ]
    daily = any("PerDay" in quota_id for quota_id in quota_ids)
    delay = next((parse_duration(d.get("retryDelay")) for d in details_of(error, "RetryInfo")), None)
    delay = delay if delay is not None else retry_after_header(retry_after, now)
    summary = "429 " + (quota_ids[0] if quota_ids else "RESOURCE_EXHAUSTED")
    return Classification(Verdict.RATE_LIMITED, summary, 429, delay, daily)


def key_fault(error: dict) -> str | None:
    """What Google says is wrong with the key itself (a reason or a short label), or None."""
    reasons = [str(info.get("reason")) for info in details_of(error, "ErrorInfo")]
    named = next((reason for reason in reasons if reason in KEY_FAULT_REASONS), None)
    if named:
        return named
    message = str(error.get("message", "")).strip()
    return next((label for pattern, label in KEY_FAULT_MESSAGES if pattern.match(message)), None)


def classify_response(status: int, body: bytes, retry_after: str | None, now: datetime) -> Classification:
    """Judge a non-200 upstream answer (see the table at the top of this module)."""
    if 300 <= status < 400:
        return Classification(Verdict.REDIRECTED, f"{status} redirect from the upstream (not followed)", status)
    error = google_error(body)
    if status == 429:
        return classify_rate_limit(error, retry_after, now)
    google_status = str(error.get("status", ""))
    reason = next((str(info.get("reason")) for info in details_of(error, "ErrorInfo")), "")
    label = f"{status} {reason or google_status}".strip()
    if status >= 500:
        return Classification(Verdict.TRANSIENT, label, status, strike=True)
    return classify_refusal(status, error, reason, label)


def classify_refusal(status: int, error: dict, reason: str, label: str) -> Classification:
    """A 4xx other than 429: the caller's error unless Google names the key (or we erred)."""
    google_status = str(error.get("status", ""))
    fault = key_fault(error) if status in KEY_FAULT_STATUSES else None
    if fault:
        return Classification(Verdict.KEY_REJECTED, label if fault == reason else f"{label}: {fault}", status)
    message = str(error.get("message", "")).strip()
    if status == 401 or google_status == "UNAUTHENTICATED" or OUR_FAULT_MESSAGES.match(message):
        # The upstream did not take the credential we attached (none, or the wrong kind):
        # the Vault's bug, not the key's, so fail over without blaming anyone.
        return Classification(Verdict.TRANSIENT, f"{label}: the upstream did not accept our credentials", status)
    if google_status == "FAILED_PRECONDITION" and ACCOUNT_CANNOT_SERVE.match(message):
        return Classification(Verdict.KEY_FAILURE, label, status)
    return Classification(Verdict.CLIENT_ERROR, label, status)


def transport_failure(kind: str, timed_out: bool = False) -> Classification:
    """A timeout, a refused connection or an empty answer: retry elsewhere; a breaker strike."""
    return Classification(Verdict.TRANSIENT, kind, 0, timed_out=timed_out, strike=True)
