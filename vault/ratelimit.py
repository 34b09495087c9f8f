"""Rate limits: requests per minute per Vault key, and failed logins, via the `limits` library.

With `REDIS_URL` the counters are shared by every worker and host; without it, or while
Redis is unreachable (logged), each worker counts on its own.
"""

import logging
import math
import time

import limits
import redis
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from vault.errors import RateLimited

log = logging.getLogger(__name__)
WARN_EVERY_SECONDS = 30.0


class Limiter:
    """Moving-window limits over a shared storage, falling back to memory on Redis errors."""

    def __init__(self, redis_url: str | None, prefix: str):
        self._shared = MovingWindowRateLimiter(storage_from_string(redis_url, key_prefix=prefix[:-1])) \
            if redis_url else None
        self._local = MovingWindowRateLimiter(MemoryStorage())
        self._warned_at = -WARN_EVERY_SECONDS

    def _run(self, method: str, *args):
        if self._shared is not None:
            try:
                return getattr(self._shared, method)(*args)
            except redis.RedisError as exc:
                now = time.monotonic()
                if now - self._warned_at >= WARN_EVERY_SECONDS:
                    self._warned_at = now
                    log.warning("Redis unavailable (%s): rate limits are counted per worker", type(exc).__name__)
        return getattr(self._local, method)(*args)

    def ping(self) -> bool:
        """True if the shared storage answers (raises when it does not)."""
        return self._shared is None or self._shared.storage.check()

    def hit(self, item: limits.RateLimitItem, *identifiers: str) -> bool:
        """Count one event; False if it is over the limit."""
        return self._run("hit", item, *identifiers)

    def test(self, item: limits.RateLimitItem, *identifiers: str) -> bool:
        """True if one more event would be within the limit (counts nothing)."""
        return self._run("test", item, *identifiers)

    def retry_after(self, item: limits.RateLimitItem, *identifiers: str) -> int:
        """Whole seconds until the window has room again (at least 1)."""
        stats = self._run("get_window_stats", item, *identifiers)
        return max(1, math.ceil(stats.reset_time - time.time()))

    def clear(self, item: limits.RateLimitItem, *identifiers: str) -> None:
        self._run("clear", item, *identifiers)


def per_minute(count: int) -> limits.RateLimitItem:
    return limits.RateLimitItemPerMinute(count)


def enforce_key_limit(limiter: Limiter, api_key_id: int, per_minute_limit: int) -> None:
    """Count a proxied request on its Vault key; `RateLimited` (429) over the limit. 0 = no limit."""
    if per_minute_limit <= 0:
        return
    item = per_minute(per_minute_limit)
    if not limiter.hit(item, "key", str(api_key_id)):
        raise RateLimited(f"Rate limit of {per_minute_limit} requests per minute reached for this key.",
                          retry_after=limiter.retry_after(item, "key", str(api_key_id)))


class LoginThrottle:
    """Failed logins per account (and four times as many per address) within a window."""

    def __init__(self, limiter: Limiter, max_failures: int, window_seconds: float):
        self._limiter = limiter
        seconds = max(1, int(window_seconds))
        self._account = limits.RateLimitItemPerSecond(max_failures, seconds)
        self._address = limits.RateLimitItemPerSecond(max_failures * 4, seconds)

    def retry_after(self, email: str, address: str) -> int | None:
        """Seconds to wait before another attempt, or None if one may be made now."""
        checks = ((self._account, "login-account", email.strip().lower()), (self._address, "login-address", address))
        waits = [self._limiter.retry_after(item, kind, who) for item, kind, who in checks
                 if not self._limiter.test(item, kind, who)]
        return max(waits) if waits else None

    def failed(self, email: str, address: str) -> None:
        self._limiter.hit(self._account, "login-account", email.strip().lower())
        self._limiter.hit(self._address, "login-address", address)

    def succeeded(self, email: str) -> None:
        self._limiter.clear(self._account, "login-account", email.strip().lower())
