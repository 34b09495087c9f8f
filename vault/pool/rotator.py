"""Round-robin over the usable upstream keys, with per-model cooldowns, a breaker and disabling.

Independent of Flask and the database: the pool is handed in with `load()`, each call's
outcome is reported back (`succeeded`, `rate_limited`, `faltered`, `failed`, `rejected`),
and `pick()` answers with the next usable key. Gemini quotas are per project per model, so
a 429 cools a key for that model only. A key that keeps failing upstream (5xx, timeouts)
trips its circuit breaker and rests briefly for every model: a cooldown under the model
`ALL_MODELS`. Disabling takes the key out for every model until a time or an admin.

All state sits behind one lock, which gevent's monkey-patching turns into a cooperative
lock, so the rotator is correct under real threads and greenlets alike.
"""

import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

INDEFINITELY = math.inf
ALL_MODELS = "*"  # the cooldown slot of a key resting after its breaker tripped (no model id has a "*")


@dataclass(frozen=True)
class PoolKey:
    """A usable upstream key as the rotator hands it out. `secret` is never printed."""

    id: int
    secret: str = field(repr=False)
    masked: str


@dataclass(frozen=True)
class PoolSnapshot:
    """The durable state of the pool: keys, disables and cooldowns (epoch seconds, by (key, model))."""

    keys: list[PoolKey]
    disabled_until: dict[int, float] = field(default_factory=dict)
    cooldowns: dict[tuple[int, str], float] = field(default_factory=dict)
    failures: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RotatorPolicy:
    """How long keys rest: exponential 429 backoff, the circuit breaker and the disable threshold.

    `breaker_failures` upstream failures in a row (0 turns the breaker off) set a key aside
    for `breaker_seconds`.
    """

    cooldown_base: float = 5.0
    cooldown_max: float = 600.0
    max_failures: int = 5
    disable_seconds: float = 3600.0
    breaker_failures: int = 3
    breaker_seconds: float = 30.0


class NoUsableKey(Exception):
    """No key can serve this model now.

    `retry_after` is the seconds until the soonest key is back, or None when no key is
    configured or every key is disabled; `resting` says whether some key is out because its
    breaker tripped (rather than only cooling after 429s).
    """

    def __init__(self, retry_after: float | None, resting: bool = False):
        super().__init__("no usable upstream key")
        self.retry_after = retry_after
        self.resting = resting


class KeyRotator:
    """Hands out keys round-robin, skipping disabled keys and keys cooling for the model."""

    def __init__(self, policy: RotatorPolicy | None = None, clock: Callable[[], float] = time.time):
        self.policy = policy or RotatorPolicy()
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: list[PoolKey] = []
        self._next = 0
        self._disabled: dict[int, float] = {}
        self._cooldowns: dict[tuple[int, str], float] = {}
        self._failures: dict[int, int] = {}
        self._strikes: dict[int, int] = {}
        self._streaks: dict[tuple[int, str], int] = {}

    def load(self, snapshot: PoolSnapshot) -> None:
        """Replace the pool with the durable state (the database's, shared by all workers)."""
        with self._lock:
            self._keys = sorted(snapshot.keys, key=lambda key: key.id)
            self._disabled = dict(snapshot.disabled_until)
            self._cooldowns = dict(snapshot.cooldowns)
            self._failures = dict(snapshot.failures)
            self._next %= max(len(self._keys), 1)

    def pick(self, model: str, exclude: Iterable[int] = ()) -> PoolKey:
        """The next usable key for `model`, not in `exclude`; `NoUsableKey` if none."""
        excluded = set(exclude)
        with self._lock:
            now = self._clock()
            soonest, resting = INDEFINITELY, False
            count = len(self._keys)
            for offset in range(count):
                index = (self._next + offset) % count
                key = self._keys[index]
                if key.id in excluded or self._is_disabled(key.id, now):
                    continue
                rests_until = self._cooldowns.get((key.id, ALL_MODELS), 0.0)
                back_at = max(rests_until, self._cooldowns.get((key.id, model), 0.0))
                if back_at > now:
                    soonest, resting = min(soonest, back_at), resting or rests_until > now
                    continue
                self._next = index + 1
                return key
        raise NoUsableKey(None if soonest == INDEFINITELY else max(soonest - now, 0.0), resting)

    def _is_disabled(self, key_id: int, now: float) -> bool:
        until = self._disabled.get(key_id)
        if until is None:
            return False
        if until > now:
            return True
        del self._disabled[key_id]  # a timed disable has run out: the key is back
        self._failures[key_id] = 0
        return False

    def succeeded(self, key_id: int, model: str) -> bool:
        """A call worked: the key's failure counts and the model's backoff start over.

        Returns whether the key had (durable) failures to forget.
        """
        with self._lock:
            had_failures = self._failures.get(key_id, 0) > 0
            self._failures[key_id] = 0
            self._strikes.pop(key_id, None)
            self._streaks.pop((key_id, model), None)
            return had_failures

    def rate_limited(self, key_id: int, model: str, retry_after: float | None = None,
                     until: float | None = None) -> float:
        """Cool the key for `model`; returns when the cooldown ends (epoch seconds).

        `until` (a daily reset) wins over `retry_after`, which wins over exponential backoff.
        """
        with self._lock:
            now = self._clock()
            streak = self._streaks.get((key_id, model), 0) + 1
            self._streaks[(key_id, model)] = streak
            if until is None:
                seconds = retry_after if retry_after is not None else self._backoff(streak)
                until = now + seconds
            self._cooldowns[(key_id, model)] = max(until, self._cooldowns.get((key_id, model), 0.0))
            return self._cooldowns[(key_id, model)]

    def _backoff(self, streak: int) -> float:
        return min(self.policy.cooldown_base * 2 ** (streak - 1), self.policy.cooldown_max)

    def failed(self, key_id: int) -> tuple[int, float | None]:
        """Count a key-attributable failure; returns (consecutive failures, disabled until)."""
        with self._lock:
            failures = self._failures.get(key_id, 0) + 1
            self._failures[key_id] = failures
            if failures < self.policy.max_failures:
                return failures, None
            self._disabled[key_id] = self._clock() + self.policy.disable_seconds
            return failures, self._disabled[key_id]

    def faltered(self, key_id: int) -> tuple[int, float | None]:
        """Count an upstream failure (5xx, timeout) of the key: a strike toward its breaker.

        Returns (strikes in a row, rests until): the breaker trips at `breaker_failures`
        strikes, setting the key aside for every model and starting the count over.
        """
        with self._lock:
            strikes = self._strikes.get(key_id, 0) + 1
            if self.policy.breaker_failures <= 0 or strikes < self.policy.breaker_failures:
                self._strikes[key_id] = strikes
                return strikes, None
            self._strikes.pop(key_id, None)
            return strikes, self._rest(key_id, self._clock() + self.policy.breaker_seconds)

    def _rest(self, key_id: int, until: float) -> float:
        slot = (key_id, ALL_MODELS)
        self._cooldowns[slot] = max(until, self._cooldowns.get(slot, 0.0))
        return self._cooldowns[slot]

    def rejected(self, key_id: int) -> None:
        """The upstream refuses the key itself: out until an admin enables it."""
        with self._lock:
            self._disabled[key_id] = INDEFINITELY

    def enable(self, key_id: int) -> None:
        """Put a key back in rotation for every model."""
        with self._lock:
            self._disabled.pop(key_id, None)
            self._failures[key_id] = 0
            self._strikes.pop(key_id, None)
            for slot in [slot for slot in self._cooldowns if slot[0] == key_id]:
                del self._cooldowns[slot]

    def find(self, key_id: int) -> PoolKey | None:
        """The key with `key_id`, whatever its state."""
        with self._lock:
            return next((key for key in self._keys if key.id == key_id), None)

    def cooldowns(self) -> dict[tuple[int, str], float]:
        """Cooldowns still running, by (key id, model)."""
        with self._lock:
            now = self._clock()
            return {slot: until for slot, until in self._cooldowns.items() if until > now}
