"""Rotation state shared through Redis, so every worker on every host sees the same pool.

`SharedKeyRotator` keeps the round-robin position, cooldowns (a tripped breaker's rest is
the cooldown `cool:<id>:*`), disables, failure counts and breaker strikes in Redis (one Lua
script picks a key atomically; writes are single commands), and mirrors every change in the
local `KeyRotator` it extends. When Redis cannot be reached it logs a warning and answers
from the local state until Redis is back; the database stays the durable copy either way.
"""

import logging
import time
from collections.abc import Callable, Iterable

import redis

from vault.pool.rotator import (
    ALL_MODELS,
    INDEFINITELY,
    KeyRotator,
    NoUsableKey,
    PoolKey,
    PoolSnapshot,
    RotatorPolicy,
)

log = logging.getLogger(__name__)

# Picks the next usable key for a model: the cursor moves to just after the chosen key, so
# keys skipped for a cooldown do not hand their turn to their neighbour. A key resting after
# its breaker tripped (`cool:<id>:*`) is skipped for every model. Answers
# {key id or -1, ms until the soonest skipped key is back or -2, 1 if a key is resting}.
PICK_SCRIPT = """
local prefix, model = ARGV[1], ARGV[2]
local n = #ARGV - 2
if n == 0 then return {-1, -2, 0} end
local start = tonumber(redis.call('GET', prefix .. 'cursor') or '0')
local soonest, resting = -2, 0
for i = 0, n - 1 do
  local id = ARGV[3 + ((start + i) % n)]
  if redis.call('EXISTS', prefix .. 'disabled:' .. id) == 0 then
    local rest = redis.call('PTTL', prefix .. 'cool:' .. id .. ':*')
    local ttl = redis.call('PTTL', prefix .. 'cool:' .. id .. ':' .. model)
    if ttl < 0 and rest < 0 then
      redis.call('SET', prefix .. 'cursor', (start + i + 1) % n)
      return {tonumber(id), 0, 0}
    end
    if rest >= 0 then resting = 1 end
    local wait = math.max(ttl, rest)
    if soonest < 0 or wait < soonest then soonest = wait end
  end
end
return {-1, soonest, resting}
"""

WARN_EVERY_SECONDS = 30.0


def connect(url: str) -> redis.Redis:
    """A client that gives up fast, so a Redis outage costs milliseconds, not requests."""
    return redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5, health_check_interval=30)


class SharedKeyRotator(KeyRotator):
    """A `KeyRotator` whose state lives in Redis, with the local state as the fallback."""

    def __init__(self, client: redis.Redis, policy: RotatorPolicy | None = None,
                 clock: Callable[[], float] = time.time, prefix: str = "vault:pool:"):
        super().__init__(policy, clock)
        self._redis = client
        self._prefix = prefix
        self._pick = client.register_script(PICK_SCRIPT)
        self._warned_at = -WARN_EVERY_SECONDS

    def _shared(self, action: Callable[[], object], fallback: object = None) -> object:
        """Run a Redis action; on failure warn (now and then) and return `fallback`."""
        try:
            return action()
        except redis.RedisError as exc:
            now = time.monotonic()
            if now - self._warned_at >= WARN_EVERY_SECONDS:
                self._warned_at = now
                log.warning("Redis unavailable (%s): rotation uses this worker's local state", type(exc).__name__)
            return fallback

    def load(self, snapshot: PoolSnapshot) -> None:
        """Take the pool from the database, and make sure Redis knows its durable disables and cooldowns."""
        super().load(snapshot)
        now = self._clock()

        def seed() -> None:
            pipe = self._redis.pipeline(transaction=False)
            for key_id, until in snapshot.disabled_until.items():
                self._set_until(pipe, f"disabled:{key_id}", until, now, only_if_absent=True)
            for (key_id, model), until in snapshot.cooldowns.items():
                self._set_until(pipe, f"cool:{key_id}:{model}", until, now, only_if_absent=True)
            pipe.execute()

        self._shared(seed)

    def _set_until(self, pipe, name: str, until: float, now: float, only_if_absent: bool = False) -> None:
        if until == INDEFINITELY:
            pipe.set(self._prefix + name, "1", nx=only_if_absent)
        elif until > now:
            pipe.set(self._prefix + name, "1", pxat=int(until * 1000), nx=only_if_absent)

    def pick(self, model: str, exclude: Iterable[int] = ()) -> PoolKey:
        excluded = set(exclude)
        with self._lock:
            candidates = [key for key in self._keys if key.id not in excluded]
        result = self._shared(lambda: self._pick(args=[self._prefix, model, *[key.id for key in candidates]]))
        if result is None:
            return super().pick(model, excluded)
        chosen, wait_ms, resting = int(result[0]), int(result[1]), bool(int(result[2]))
        if chosen >= 0:
            return next(key for key in candidates if key.id == chosen)
        raise NoUsableKey(wait_ms / 1000 if wait_ms >= 0 else None, resting)

    def succeeded(self, key_id: int, model: str) -> bool:
        had_failures = super().succeeded(key_id, model)

        def forget() -> int:
            pipe = self._redis.pipeline(transaction=False)
            pipe.delete(self._prefix + f"fail:{key_id}", self._prefix + f"streak:{key_id}:{model}")
            pipe.delete(self._prefix + f"strikes:{key_id}")
            return pipe.execute()[0]

        removed = self._shared(forget, 0)
        return had_failures or bool(removed)

    def rate_limited(self, key_id: int, model: str, retry_after: float | None = None,
                     until: float | None = None) -> float:
        ends = super().rate_limited(key_id, model, retry_after, until)

        def share() -> None:
            pipe = self._redis.pipeline(transaction=False)
            pipe.set(self._prefix + f"cool:{key_id}:{model}", "1", pxat=int(ends * 1000))
            pipe.execute()

        self._shared(share)
        return ends

    def failed(self, key_id: int) -> tuple[int, float | None]:
        local_failures, _ = super().failed(key_id)
        failures = self._shared(lambda: self._redis.incr(self._prefix + f"fail:{key_id}"), local_failures)
        if failures < self.policy.max_failures:
            return failures, None
        until = self._clock() + self.policy.disable_seconds
        with self._lock:
            self._disabled[key_id] = until
        self._shared(lambda: self._redis.set(self._prefix + f"disabled:{key_id}", "1", pxat=int(until * 1000)))
        return failures, until

    def faltered(self, key_id: int) -> tuple[int, float | None]:
        name = self._prefix + f"strikes:{key_id}"
        strikes = self._shared(lambda: self._redis.incr(name))
        if strikes is None:
            return super().faltered(key_id)  # Redis is away: this worker counts on its own
        if self.policy.breaker_failures <= 0 or strikes < self.policy.breaker_failures:
            return strikes, None
        with self._lock:
            self._strikes.pop(key_id, None)
            until = self._rest(key_id, self._clock() + self.policy.breaker_seconds)

        def share() -> None:
            pipe = self._redis.pipeline(transaction=False)
            pipe.delete(name)
            pipe.set(self._prefix + f"cool:{key_id}:{ALL_MODELS}", "1", pxat=int(until * 1000))
            pipe.execute()

        self._shared(share)
        return strikes, until

    def rejected(self, key_id: int) -> None:
        super().rejected(key_id)
        self._shared(lambda: self._redis.set(self._prefix + f"disabled:{key_id}", "1"))

    def enable(self, key_id: int) -> None:
        super().enable(key_id)

        def clear() -> None:
            names = [self._prefix + f"disabled:{key_id}", self._prefix + f"fail:{key_id}",
                     self._prefix + f"strikes:{key_id}"]
            names += list(self._redis.scan_iter(match=self._prefix + f"cool:{key_id}:*", count=500))
            self._redis.delete(*names)

        self._shared(clear)
