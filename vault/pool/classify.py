"""What an upstream answer means for the key that got it.

Decided from the HTTP status *and* Google's error body (`error.status`, `details[]` with
`ErrorInfo.reason`, `RetryInfo.retryDelay`, `QuotaFailure` quota ids). The OpenAI-
compatible endpoint wraps the same envelope in a JSON array; both forms are read.
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
KEY_INVALID_REASONS = {"API_KEY_INVALID", "API_KEY_EXPIRED"}
KEY_INVALID_MESSAGES = ("api key not valid", "api key not found", "api key expired")
UNREGISTERED_CALLER = "unregistered callers"
PROJECT_RESOURCES = ("/files", "/cachedContents")
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


class Verdict(enum.Enum):
    """What to do after an upstream answer."""

    OK = "ok"                      # relay it
    CLIENT_ERROR = "client_error"  # the request itself is wrong: relay it, the key is fine
    RATE_LIMITED = "rate_limited"  # cool the key for this model, try another
    KEY_REJECTED = "key_rejected"  # the key is invalid/blocked: disable until an admin acts
    KEY_FAILURE = "key_failure"    # the key's account cannot serve: count it, try another
    TRANSIENT = "transient"        # upstream trouble (5xx, timeout, empty): try another, no blame


RETRYABLE = {Verdict.RATE_LIMITED, Verdict.KEY_REJECTED, Verdict.KEY_FAILURE, Verdict.TRANSIENT}


@dataclass(frozen=True)
class Classification:
    """A verdict with what is needed to act on it. `summary` never holds a secret."""

    verdict: Verdict
    summary: str
    status: int = 0
    retry_after: float | None = None
    daily_quota: bool = False
    timed_out: bool = False


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


def is_key_invalid(error: dict) -> bool:
    """Google says the key itself is not valid."""
    reasons = {str(info.get("reason")) for info in details_of(error, "ErrorInfo")}
    message = str(error.get("message", "")).lower()
    return bool(reasons & KEY_INVALID_REASONS) or message.startswith(KEY_INVALID_MESSAGES)


def classify_response(status: int, body: bytes, path: str, retry_after: str | None,
                      now: datetime) -> Classification:
    """Judge a non-200 upstream answer."""
    error = google_error(body)
    google_status = str(error.get("status", ""))
    reason = next((str(info.get("reason")) for info in details_of(error, "ErrorInfo")), "")
    label = f"{status} {reason or google_status}".strip()
    if status == 429:
        return classify_rate_limit(error, retry_after, now)
    if status >= 500:
        return Classification(Verdict.TRANSIENT, label, status)
    if is_key_invalid(error) or status == 401:
        return Classification(Verdict.KEY_REJECTED, label, status)
    if status == 403:
        return classify_forbidden(error, path, label)
    if google_status == "FAILED_PRECONDITION":
        return Classification(Verdict.KEY_FAILURE, label, status)
    return Classification(Verdict.CLIENT_ERROR, label, status)


def classify_forbidden(error: dict, path: str, label: str) -> Classification:
    """A 403: about the key, about a resource owned by another key's project, or our bug."""
    if UNREGISTERED_CALLER in str(error.get("message", "")).lower():
        return Classification(Verdict.TRANSIENT, "403 no key reached the upstream", 403)
    if any(resource in path for resource in PROJECT_RESOURCES):
        return Classification(Verdict.CLIENT_ERROR, label, 403)
    return Classification(Verdict.KEY_REJECTED, label, 403)


def transport_failure(kind: str, timed_out: bool = False) -> Classification:
    """A timeout, a refused connection or an empty answer: retry elsewhere, blame no key."""
    return Classification(Verdict.TRANSIENT, kind, 0, timed_out=timed_out)
