"""Rate limits via the `limits` library: requests per minute per Vault key, failed logins,
and sign-ups per client address.

With `REDIS_URL` the counters are shared by every worker and host; without it, or while
Redis is unhealthy (logged), each worker counts on its own. The Redis client gives up
after a short timeout without retrying, and a `RedisGuard` (the circuit breaker shared
with the key rotator) answers from the local counters at once while Redis is unhealthy,
so a Redis that never answers costs one timeout, not one per login or request.
"""

import hashlib
import ipaddress
import math
import time

import limits
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from vault.errors import RateLimited, policy_header
from vault.redisguard import RedisGuard, client_options

UNANSWERED = object()


class Limiter:
    """Moving-window limits over a shared storage, falling back to memory while Redis is unhealthy."""

    def __init__(self, redis_url: str | None, prefix: str, guard: RedisGuard | None = None, timeout: float = 0.25):
        self._shared = None
        if redis_url:
            storage = storage_from_string(redis_url, key_prefix=prefix[:-1], **client_options(timeout))
            self._shared = MovingWindowRateLimiter(storage)
            self._guard = guard or RedisGuard(storage.get_connection().ping)
        self._local = MovingWindowRateLimiter(MemoryStorage())

    def _run(self, method: str, *args):
        if self._shared is not None:
            answer = self._guard.call(lambda: getattr(self._shared, method)(*args), UNANSWERED)
            if answer is not UNANSWERED:
                return answer
        return getattr(self._local, method)(*args)

    def ping(self) -> bool:
        """True if the shared storage answers, or there is none; no network while the breaker is open."""
        return self._shared is None or self._guard.check()

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

    def used(self, item: limits.RateLimitItem, *identifiers: str) -> int:
        """How many events the current window holds."""
        stats = self._run("get_window_stats", item, *identifiers)
        return max(0, item.amount - stats.remaining)

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
        raise RateLimited(f"rate_limit_rpm: this key's limit of {per_minute_limit} requests per minute is reached.",
                          retry_after=limiter.retry_after(item, "key", str(api_key_id)),
                          headers=policy_header("rate_limit_rpm"))


def address_bucket(address: str) -> str:
    """The unit a client address is counted in: the address itself, or its /64 for IPv6.

    One IPv6 subscriber commonly holds a whole /64, so counting single IPv6 addresses would
    hand an attacker billions of fresh budgets.
    """
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if parsed.version == 6 and parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False).network_address) + "-64"
    return str(parsed)


def account_bucket(email: str) -> str:
    """A fixed-size name for an account in counter keys (no email text in Redis)."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


ADDRESS_FACTOR = 4
ACCOUNT_FACTOR = 20


class LoginThrottle:
    """Failed logins within a window, counted so that nobody can lock another person out.

    Three counters: per account *and* address (`max_failures`), per address over every
    account (x4), and per account over every address (x20). Wrong passwords from one
    address make that address wait for that account; the owner elsewhere is not affected.
    Only an attack spread over twenty or more addresses reaches the account-wide cap, which
    bounds how fast a password can be guessed at all.
    """

    def __init__(self, limiter: Limiter, max_failures: int, window_seconds: float):
        self._limiter = limiter
        seconds = max(1, int(window_seconds))
        self._pair = limits.RateLimitItemPerSecond(max_failures, seconds)
        self._address = limits.RateLimitItemPerSecond(max_failures * ADDRESS_FACTOR, seconds)
        self._account = limits.RateLimitItemPerSecond(max_failures * ACCOUNT_FACTOR, seconds)

    def _counters(self, email: str, address: str) -> list[tuple[limits.RateLimitItem, tuple[str, ...]]]:
        account, place = account_bucket(email), address_bucket(address)
        return [(self._pair, ("login-pair", account, place)), (self._address, ("login-address", place)),
                (self._account, ("login-account", account))]

    def retry_after(self, email: str, address: str) -> int | None:
        """Seconds to wait before another attempt, or None if one may be made now."""
        waits = [self._limiter.retry_after(item, *who) for item, who in self._counters(email, address)
                 if not self._limiter.test(item, *who)]
        return max(waits) if waits else None

    def failed(self, email: str, address: str) -> None:
        """Count one failed login for `email` from `address`."""
        for item, who in self._counters(email, address):
            self._limiter.hit(item, *who)

    def succeeded(self, email: str, address: str) -> None:
        """Forget this address's failures for this account (the wider counters keep theirs)."""
        item, who = self._counters(email, address)[0]
        self._limiter.clear(item, *who)


def enforce_signup_limit(limiter: Limiter, address: str, per_hour: int) -> None:
    """Count a sign-up attempt from `address`; `RateLimited` (429) past `per_hour`. 0 = no limit."""
    if per_hour <= 0:
        return
    item, place = limits.RateLimitItemPerHour(per_hour), address_bucket(address)
    if not limiter.hit(item, "signup", place):
        raise RateLimited("Too many sign-ups from your address; try again later.",
                          retry_after=limiter.retry_after(item, "signup", place))


def enforce_redeem_limit(limiter: Limiter, user_id: int, address: str, per_hour: int) -> None:
    """Count a redemption attempt by the user and from the address; `RateLimited` (429) past `per_hour`
    for the user or four times that for the address (several users may share one). 0 = no limit.

    Every attempt counts, not only failed ones: a burst of concurrent guesses is refused as
    exactly as a slow series, so codes cannot be brute-forced.
    """
    if per_hour <= 0:
        return
    user_item, address_item = limits.RateLimitItemPerHour(per_hour), limits.RateLimitItemPerHour(
        per_hour * ADDRESS_FACTOR)
    for item, who in ((user_item, ("redeem-user", str(user_id))),
                      (address_item, ("redeem-address", address_bucket(address)))):
        if not limiter.hit(item, *who):
            raise RateLimited("Too many redemption attempts; try again later.",
                              retry_after=limiter.retry_after(item, *who))
