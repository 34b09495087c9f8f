"""What a cached content's storage costs: its tokens, for the time it is kept, at an hourly rate.

Google bills a cache's storage per token per hour on top of the (cheaper) cached-token price
of the calls that use it. The Vault charges it when the time is set: at creation for the
TTL, and for the extra time when a PATCH moves the expiry later. Moving it earlier or
deleting the cache early refunds nothing (documented in README). Rounded half up to the nano-USD.
"""

from datetime import datetime

PER_MILLION_TOKEN_HOURS = 1_000_000 * 3600


def storage_nano(tokens: int, seconds: float, rate_nano: int) -> int:
    """Nano-USD for keeping `tokens` for `seconds` at `rate_nano` per 1M tokens per hour."""
    if tokens <= 0 or seconds <= 0 or rate_nano <= 0:
        return 0
    numerator = tokens * round(seconds * 1000) * rate_nano
    denominator = PER_MILLION_TOKEN_HOURS * 1000
    return (numerator + denominator // 2) // denominator


def extension_seconds(charged_until: datetime | None, expires_at: datetime | None, now: datetime) -> float:
    """Seconds of storage from what is already paid for (or now) to the new expiry, if later."""
    if expires_at is None:
        return 0.0
    start = max(charged_until or now, now)
    return max((expires_at - start).total_seconds(), 0.0)


def worst_tokens(body_size: int, file_sizes: list[int], limit: int) -> int:
    """The most tokens a cache can count before Google has counted it, for the hold.

    A token per 2 bytes of the request and of each file it names (text runs 3-4 bytes a token;
    images, audio, video and PDF pages take far fewer tokens than bytes) plus 258 per file,
    but never more than the model's input limit, which no cache can exceed.
    """
    return min(body_size // 2 + sum(size // 2 + 258 for size in file_sizes), limit)
