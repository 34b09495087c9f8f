"""Rotation state shared through Redis, so every worker on every host sees the same pool.

Redis is a cache of the database, never its owner. `SharedKeyRotator` keeps in Redis what
must be seen by every worker at once -- the round-robin position, cooldowns (a tripped
breaker's rest is the cooldown `cool:<id>:*`), disables, failure streaks and breaker
strikes -- and mirrors every change in the local `KeyRotator` it extends. Every entry
either expires by itself or is re-derived from the database:

| name (after the prefix)  | holds                                    | lifetime                          |
|--------------------------|------------------------------------------|-----------------------------------|
| `cursor`                 | the round-robin position                 | a day after the last pick         |
| `cool:<id>:<model>`      | a cooldown (`*`: a breaker rest)         | until it ends; re-derived         |
| `disabled:<id>`          | a disable                                | until it ends (timed); re-derived |
| `failures:<id>`          | failures in a row toward a timed disable | `STREAK_TTL_SECONDS`; re-derived  |
| `strikes:<id>`           | 5xx/timeouts in a row toward the breaker | `STREAK_TTL_SECONDS`              |
| `index`                  | the names of the cooldowns and disables  | cleaned by every reconcile        |
| `version`                | bumped by every admin change of the pool | a week                            |

Cooldowns and disables carry the time they were written (their value); failure streaks
hold it in a field. `load()` -- each refresh from the database -- reconciles Redis both
ways in one script: it writes what the database says, and clears what the database no
longer says (a disable an admin lifted while Redis was away, a deleted key's entries),
leaving alone only entries newer than the snapshot. A missed Redis write is so repaired
at the next refresh, and after an outage (the `RedisGuard` reports Redis back) the pool
is re-read at once, which writes back everything recorded meanwhile: it went to the
database with every change of health.

An admin's change of the pool (add, enable, disable, delete) is committed to the
database first, then announced by bumping `version`; the pick script refuses to pick
for a worker whose pool is older (`PoolChanged`), which re-reads it first. So a deleted
key is never handed out again anywhere, and no worker waits out its refresh interval.

While the `RedisGuard` holds Redis unhealthy, every call answers from the local state at
once, as without Redis.
"""

import time
from collections.abc import Callable, Iterable

import redis

from vault.pool.rotator import (
    ALL_MODELS,
    INDEFINITELY,
    RECENT_SECONDS,
    KeyRotator,
    NoUsableKey,
    PoolChanged,
    PoolKey,
    PoolSnapshot,
    RotatorPolicy,
)
from vault.redisguard import RedisGuard, redis_client

CURSOR_TTL_SECONDS = 86400
STREAK_TTL_SECONDS = 3600  # a failure or strike streak with no new failure for an hour is over
VERSION_TTL_SECONDS = 7 * 86400
CHANGED = -3

# Picks the next usable key for a model: the cursor moves to just after the chosen key, so
# keys skipped for a cooldown do not hand their turn to their neighbour. A key resting after
# its breaker tripped (`cool:<id>:*`) is skipped for every model; a key disabled without an
# end (PTTL -1) is left out altogether. Keys passed with the flag 1 (already tried by this
# request) are never chosen, but their wait counts. ARGV: prefix, model, the caller's pool
# version, cursor TTL (ms), then (key id, flag) pairs. Answers {key id, 0, 0}, or {-1, ms until
# the soonest key is back or -2 if none will be, 1 if "resting"} (see `NoUsableKey`), or
# {-3, -2, 0} when the caller's pool is out of date.
PICK_SCRIPT = """
local prefix, model, version = ARGV[1], ARGV[2], ARGV[3]
if (redis.call('GET', prefix .. 'version') or '') ~= version then return {-3, -2, 0} end
local n = (#ARGV - 4) / 2
if n == 0 then return {-1, -2, 0} end
local start = tonumber(redis.call('GET', prefix .. 'cursor') or '0') or 0
local soonest, waiting, resting = -2, 0, 0
for i = 0, n - 1 do
  local at = (start + i) % n
  local id, tried = ARGV[5 + 2 * at], ARGV[6 + 2 * at] == '1'
  local off = redis.call('PTTL', prefix .. 'disabled:' .. id)
  if off ~= -1 then
    local rest = redis.call('PTTL', prefix .. 'cool:' .. id .. ':*')
    local ttl = redis.call('PTTL', prefix .. 'cool:' .. id .. ':' .. model)
    if off < 0 and rest < 0 and ttl < 0 and not tried then
      redis.call('SET', prefix .. 'cursor', (at + 1) % n, 'PX', ARGV[4])
      return {tonumber(id), 0, 0}
    end
    local wait = math.max(off, rest, ttl, 0)
    if soonest < 0 or wait < soonest then soonest = wait end
    if off < 0 then
      waiting = 1
      if rest >= 0 then resting = 1 end
    end
  end
end
if waiting == 0 then resting = 1 end
return {-1, soonest, resting}
"""

# Makes Redis say what the database says. ARGV: prefix, keep-after (ms: entries written since
# are newer than the snapshot and kept as they are), stamp (ms, written into what this sets),
# streak TTL (ms), the number of pool keys, their ids, then (name, value) pairs: `cool:…` and
# `disabled:…` with their end in epoch ms (or `inf`), `failures:<id>` with a count. Answers
# {the pool version, how many entries the database does not say were kept as newer than the snapshot}.
RECONCILE_SCRIPT = """
local prefix, keep_after, stamp, streak_ttl = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local n = tonumber(ARGV[5])
local index = prefix .. 'index'
local wanted, counts, kept = {}, {}, 0
for i = 6 + n, #ARGV, 2 do
  if string.sub(ARGV[i], 1, 9) == 'failures:' then counts[ARGV[i]] = ARGV[i + 1] else wanted[ARGV[i]] = ARGV[i + 1] end
end
local function settled(name)
  if redis.call('TYPE', name).ok == 'hash' then
    return (tonumber(redis.call('HGET', name, 'at')) or 0) < keep_after
  end
  return (tonumber(redis.call('GET', name)) or 0) < keep_after
end
local function forget(name)
  if redis.call('EXISTS', prefix .. name) == 0 then return false end
  if not settled(prefix .. name) then
    kept = kept + 1
    return false
  end
  redis.call('DEL', prefix .. name)
  return true
end
for _, name in ipairs(redis.call('SMEMBERS', index)) do
  if redis.call('EXISTS', prefix .. name) == 0 then
    redis.call('SREM', index, name)
  elseif wanted[name] == nil and forget(name) then
    redis.call('SREM', index, name)
  end
end
for i = 6, 5 + n do
  if wanted['disabled:' .. ARGV[i]] == nil then forget('disabled:' .. ARGV[i]) end
  if counts['failures:' .. ARGV[i]] == nil then forget('failures:' .. ARGV[i]) end
  redis.call('DEL', prefix .. 'fail:' .. ARGV[i])
end
for name, value in pairs(wanted) do
  if redis.call('EXISTS', prefix .. name) == 0 or settled(prefix .. name) then
    if value == 'inf' then redis.call('SET', prefix .. name, stamp)
    else redis.call('SET', prefix .. name, stamp, 'PXAT', value) end
    redis.call('SADD', index, name)
  end
end
for name, value in pairs(counts) do
  if redis.call('EXISTS', prefix .. name) == 0 or settled(prefix .. name) then
    redis.call('DEL', prefix .. name)
    redis.call('HSET', prefix .. name, 'n', value, 'at', stamp)
    redis.call('PEXPIRE', prefix .. name, streak_ttl)
  end
end
return {redis.call('GET', prefix .. 'version') or '', kept}
"""

# Forgets everything about one key (an admin enabled it). ARGV: prefix, key id.
FORGET_SCRIPT = """
local prefix, id = ARGV[1], ARGV[2]
local index = prefix .. 'index'
redis.call('DEL', prefix .. 'disabled:' .. id, prefix .. 'failures:' .. id, prefix .. 'strikes:' .. id,
           prefix .. 'fail:' .. id)
redis.call('SREM', index, 'disabled:' .. id)
local cooling = 'cool:' .. id .. ':'
for _, name in ipairs(redis.call('SMEMBERS', index)) do
  if string.sub(name, 1, #cooling) == cooling then
    redis.call('DEL', prefix .. name)
    redis.call('SREM', index, name)
  end
end
return 1
"""


def connect(url: str, timeout: float = 0.25) -> redis.Redis:
    """A client that gives up fast, so a Redis outage costs milliseconds, not requests."""
    return redis_client(url, timeout)


def ms(seconds: float) -> int:
    return int(seconds * 1000)


class SharedKeyRotator(KeyRotator):
    """A `KeyRotator` whose state lives in Redis, with the local state as the fallback."""

    def __init__(self, client: redis.Redis, policy: RotatorPolicy | None = None,
                 clock: Callable[[], float] = time.time, prefix: str = "vault:pool:",
                 guard: RedisGuard | None = None):
        super().__init__(policy, clock)
        self._redis = client
        self._prefix = prefix
        self._guard = guard or RedisGuard(client.ping)
        self._pick = client.register_script(PICK_SCRIPT)
        self._reconcile = client.register_script(RECONCILE_SCRIPT)
        self._forget = client.register_script(FORGET_SCRIPT)
        self._version: str | None = None
        self._resync = False
        self._announce_due = False
        self._recheck_at = INDEFINITELY
        self._guard.on_recover(self._recovered)

    def _shared(self, action: Callable[[], object], fallback: object = None) -> object:
        """Run a Redis action through the guard: `fallback` at once while Redis is unhealthy."""
        return self._guard.call(action, fallback)

    def _recovered(self) -> None:
        self._resync = True

    def needs_reload(self) -> bool:
        due = self._resync or self._announce_due or self._clock() >= self._recheck_at
        return due and self._guard.healthy

    def version(self) -> str | None:
        return self._shared(lambda: (self._redis.get(self._prefix + "version") or b"").decode())

    def announce(self) -> None:
        def bump() -> int:
            pipe = self._redis.pipeline()
            pipe.incr(self._prefix + "version")
            pipe.expire(self._prefix + "version", VERSION_TTL_SECONDS)
            return pipe.execute()[0]

        bumped = self._shared(bump)
        # Redis is down: the change is announced at the reload that follows its return.
        self._announce_due = bumped is None and not self._guard.healthy
        with self._lock:
            if bumped is not None and self._version is not None and int(self._version or 0) == bumped - 1:
                self._version = str(bumped)  # nobody else changed it meanwhile: this worker is current

    def load(self, snapshot: PoolSnapshot) -> None:
        """Take the pool from the database and make Redis agree with it (see the module docstring)."""
        super().load(snapshot)
        now = self._clock()
        read_at = now if snapshot.read_at is None else snapshot.read_at
        args = [self._prefix, ms(read_at - RECENT_SECONDS), ms(read_at), ms(STREAK_TTL_SECONDS)]
        with self._lock:
            args += [len(self._keys), *[key.id for key in self._keys], *self._wanted(now)]
        self._resync = False  # this is the re-read; an outage that interrupts it asks for another when over
        answer = self._shared(lambda: self._reconcile(args=args))
        self._version = snapshot.version
        if answer is None:
            return
        version, kept = answer
        if snapshot.version is None:
            self._version = version.decode()
        # Entries too recent for this snapshot are judged by the next one, however long the refresh interval.
        self._recheck_at = now + RECENT_SECONDS if kept else INDEFINITELY
        if self._announce_due:
            self.announce()

    def _wanted(self, now: float) -> list:
        """The state to write, as (name, value) pairs (call with the lock held)."""
        pairs: list = []
        for key_id, until in self._disabled.items():
            if until > now:
                pairs += [f"disabled:{key_id}", "inf" if until == INDEFINITELY else ms(until)]
        for (key_id, model), until in self._cooldowns.items():
            if until > now:
                pairs += [f"cool:{key_id}:{model}", ms(until)]
        for key_id, count in self._failures.items():
            if count > 0 and key_id not in self._disabled:
                pairs += [f"failures:{key_id}", count]
        return pairs

    def _write_until(self, name: str, until: float) -> None:
        def write() -> None:
            pipe = self._redis.pipeline(transaction=False)
            if until == INDEFINITELY:
                pipe.set(self._prefix + name, ms(self._clock()))
            else:
                pipe.set(self._prefix + name, ms(self._clock()), pxat=ms(until))
            pipe.sadd(self._prefix + "index", name)
            pipe.execute()

        self._shared(write)

    def pick(self, model: str, exclude: Iterable[int] = ()) -> PoolKey:
        excluded = set(exclude)
        with self._lock:
            keys, version = list(self._keys), self._version
        args: list = [self._prefix, model, version or "", ms(CURSOR_TTL_SECONDS)]
        for key in keys:
            args += [key.id, int(key.id in excluded)]
        result = self._shared(lambda: self._pick(args=args))
        if result is None:
            return self.pick_local(model, excluded)
        chosen, wait_ms, resting = (int(value) for value in result)
        if chosen == CHANGED:
            raise PoolChanged
        if chosen >= 0:
            return next(key for key in keys if key.id == chosen)
        wait = None if wait_ms < 0 else min(wait_ms / 1000, self.policy.retry_after_max)
        raise NoUsableKey(wait, bool(resting))

    def succeeded(self, key_id: int, model: str) -> bool:
        had_failures = super().succeeded(key_id, model)

        def forget() -> int:
            return self._redis.delete(self._prefix + f"failures:{key_id}", self._prefix + f"strikes:{key_id}")

        removed = self._shared(forget, 0)
        return had_failures or bool(removed)

    def rate_limited(self, key_id: int, model: str, retry_after: float | None = None,
                     until: float | None = None) -> float:
        ends = super().rate_limited(key_id, model, retry_after, until)
        self._write_until(f"cool:{key_id}:{model}", ends)
        return ends

    def failed(self, key_id: int) -> tuple[int, float | None]:
        name = self._prefix + f"failures:{key_id}"

        def count() -> int:
            pipe = self._redis.pipeline()
            pipe.hincrby(name, "n", 1)
            pipe.hset(name, "at", ms(self._clock()))
            pipe.pexpire(name, ms(STREAK_TTL_SECONDS))
            return pipe.execute()[0]

        failures = self._shared(count)
        if failures is None:
            return super().failed(key_id)  # Redis is away: this worker counts on its own
        with self._lock:
            self._failures[key_id] = failures
            self._note("failures", key_id)
            if failures < self.policy.max_failures:
                return failures, None
            until = self._disable(key_id, self._clock() + self.policy.disable_seconds)
        # The streak ends with the disable: the key comes back with a clean count, as locally.
        self._shared(lambda: self._redis.delete(name))
        self._write_until(f"disabled:{key_id}", until)
        return failures, until

    def faltered(self, key_id: int) -> tuple[int, float | None]:
        name = self._prefix + f"strikes:{key_id}"

        def count() -> int:
            pipe = self._redis.pipeline()
            pipe.incr(name)
            pipe.expire(name, STREAK_TTL_SECONDS)
            return pipe.execute()[0]

        strikes = self._shared(count)
        if strikes is None:
            return super().faltered(key_id)  # Redis is away: this worker counts on its own
        if self.policy.breaker_failures <= 0 or strikes < self.policy.breaker_failures:
            return strikes, None
        with self._lock:
            self._strikes.pop(key_id, None)
            until = self._rest(key_id, self._clock() + self.policy.breaker_seconds)
        self._shared(lambda: self._redis.delete(name))
        self._write_until(f"cool:{key_id}:{ALL_MODELS}", until)
        return strikes, until

    def rejected(self, key_id: int) -> None:
        super().rejected(key_id)
        self._write_until(f"disabled:{key_id}", INDEFINITELY)  # no end: re-derived by every reconcile

    def enable(self, key_id: int) -> None:
        super().enable(key_id)
        self._shared(lambda: self._forget(args=[self._prefix, key_id]))
