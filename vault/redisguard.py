"""Redis as a cache that may go away: short timeouts, no retries, and a circuit breaker.

Everything the Vault keeps in Redis (rotation state, rate-limit counters) has a local
fallback, so an unhealthy Redis must cost a request nothing. `RedisGuard` runs each Redis
call; the first connection error or timeout opens the breaker, and from then on every call
answers its fallback at once -- no socket is touched -- while a background probe pings
Redis at most every `retry_seconds`. When a probe is answered the breaker closes and the
listeners (`on_recover`) are told, so state kept locally meanwhile can be written back.

One guard per Redis server is shared by the rotator and the rate limiter: one black-holed
Redis costs one timeout per worker, not one per caller.
"""

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
WARN_EVERY_SECONDS = 30.0

# redis-py is imported where a client is made, not here: a Vault without REDIS_URL never loads
# it (about 6 MB per worker).


def client_options(timeout: float) -> dict:
    """redis-py options for a client that gives up after `timeout` seconds, with no retries.

    redis-py retries a failed command three times by default: a Redis that accepts
    connections and never answers would cost four timeouts per command.
    """
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return {"socket_connect_timeout": timeout, "socket_timeout": timeout, "retry": Retry(NoBackoff(), 0),
            "health_check_interval": 30}


def redis_client(url: str, timeout: float):
    """A Redis client (`redis.Redis`) for `url` that fails fast (see `client_options`)."""
    import redis

    return redis.Redis.from_url(url, **client_options(timeout))


class RedisGuard:
    """The circuit breaker around one Redis server.

    :param ping: a cheap call that raises when Redis is unusable (the probe).
    :param retry_seconds: how long the breaker stays open before the next probe.
    """

    def __init__(self, ping: Callable[[], object], retry_seconds: float = 5.0,
                 clock: Callable[[], float] = time.monotonic):
        import redis

        # Errors that say "this Redis cannot be used now"; any other RedisError (a script bug, a
        # wrong type) is logged and answered from the fallback without opening the breaker.
        self._unhealthy = (redis.ConnectionError, redis.TimeoutError, redis.exceptions.ReadOnlyError)
        self._refused = redis.RedisError
        self._ping = ping
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._healthy = True
        self._probe_at = 0.0
        self._probing = False
        self._warned_at = -WARN_EVERY_SECONDS
        self._listeners: list[Callable[[], None]] = []

    @property
    def healthy(self) -> bool:
        """False while the breaker is open (calls answer their fallback without touching Redis)."""
        return self._healthy

    def on_recover(self, listener: Callable[[], None]) -> None:
        """Call `listener` (from the probe's thread) each time Redis answers again after an outage."""
        self._listeners.append(listener)

    def call(self, action: Callable[[], T], fallback: T = None) -> T:
        """`action()`, or `fallback` at once while Redis is unhealthy or when the call fails."""
        if not self._healthy:
            self._probe_when_due()
            return fallback
        try:
            return action()
        except self._unhealthy as exc:
            self.trip(exc)
        except self._refused as exc:
            log.error("Redis refused a command (%s: %s); answering from local state", type(exc).__name__, exc)
        return fallback

    def trip(self, exc: BaseException) -> None:
        """Open the breaker after `exc`: local state only until a probe is answered."""
        with self._lock:
            was_healthy, self._healthy = self._healthy, False
            self._probe_at = self._clock() + self._retry_seconds
            warn = was_healthy or self._clock() - self._warned_at >= WARN_EVERY_SECONDS
            if warn:
                self._warned_at = self._clock()
        if warn:
            log.warning("Redis unavailable (%s): this worker runs on its local state (rotation, rate limits) "
                        "and checks again every %.0fs", type(exc).__name__, self._retry_seconds)

    def check(self) -> bool:
        """Whether Redis answers now: a ping while the breaker is closed, no network while it is open."""
        if not self._healthy:
            self._probe_when_due()
            return False
        return bool(self.call(self._ping, False))

    def _probe_when_due(self) -> None:
        with self._lock:
            if self._probing or self._clock() < self._probe_at:
                return
            self._probing = True
        # A thread (a greenlet under gevent) pings, so no request ever waits on the probe.
        threading.Thread(target=self._probe, name="redis-probe", daemon=True).start()

    def _probe(self) -> None:
        try:
            self._ping()
        except self._refused:
            with self._lock:
                self._probe_at = self._clock() + self._retry_seconds
            return
        finally:
            with self._lock:
                self._probing = False
        with self._lock:
            self._healthy = True
        log.warning("Redis answers again: shared state is back in use")
        for listener in self._listeners:
            listener()
