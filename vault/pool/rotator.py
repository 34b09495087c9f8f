"""Round-robin over the usable upstream keys, with per-model cooldowns, a breaker and disabling.

Independent of Flask and the database: the pool is handed in with `load()`, each call's
outcome is reported back (`succeeded`, `rate_limited`, `faltered`, `failed`, `rejected`),
and `pick()` answers with the next usable key. Gemini quotas are per project per model, so
a 429 cools a key for that model only. A key that keeps failing upstream (5xx, timeouts)
trips its circuit breaker and rests briefly for every model: a cooldown under the model
`ALL_MODELS`. Disabling takes the key out for every model until a time or an admin.

When no key can serve a model, `NoUsableKey.retry_after` is the time until the soonest
key can: every key still in the pool counts -- keys this request already tried, keys
cooling for the model or resting for all of them, keys disabled until a time -- except
those disabled until an admin acts. It is capped at `RotatorPolicy.retry_after_max`.

A snapshot is read from the database while requests go on; `load()` keeps what this
worker recorded since shortly before the read (`RECENT_SECONDS`), so a refresh never
undoes a cooldown that the snapshot could not contain yet.

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
# A change recorded this long before a snapshot was read may not be in it yet (its
# database write was still under way): `load()` keeps it, and the next refresh settles it.
RECENT_SECONDS = 2.0


@dataclass(frozen=True)
class PoolKey:
    """A usable upstream key as the rotator hands it out. `secret` and `proxy_url` are never printed.

    `proxy_url` is the key's own egress proxy in clear (it may hold a password), or None.
    """

    id: int
    secret: str = field(repr=False)
    masked: str
    proxy_url: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class PoolSnapshot:
    """The durable state of the pool: keys, disables and cooldowns (epoch seconds, by (key, model)).

    `read_at` is when the database was read (None: take the snapshot as it is); `version`
    is the shared pool version seen just before (see `SharedKeyRotator`).
    """

    keys: list[PoolKey]
    disabled_until: dict[int, float] = field(default_factory=dict)
    cooldowns: dict[tuple[int, str], float] = field(default_factory=dict)
    failures: dict[int, int] = field(default_factory=dict)
    read_at: float | None = None
    version: str | None = None


@dataclass(frozen=True)
class RotatorPolicy:
    """How long keys rest: exponential 429 backoff, the circuit breaker and the disable threshold.

    `breaker_failures` upstream failures in a row (0 turns the breaker off) set a key aside
    for `breaker_seconds`. `retry_after_max` caps the wait `NoUsableKey` reports.
    """

    cooldown_base: float = 5.0
    cooldown_max: float = 600.0
    max_failures: int = 5
    disable_seconds: float = 3600.0
    breaker_failures: int = 3
    breaker_seconds: float = 30.0
    retry_after_max: float = 3600.0


class NoUsableKey(Exception):
    """No key can serve this model now.

    `retry_after` is the seconds until the soonest key can (capped), or None when none
    will by itself (no key at all, or every key disabled until an admin acts). `resting`
    says that the keys not disabled are not all merely cooling after 429s: some rests
    after its breaker tripped, or only keys disabled for a while are left to wait for.
    """

    def __init__(self, retry_after: float | None, resting: bool = False):
        super().__init__("no usable upstream key")
        self.retry_after = retry_after
        self.resting = resting


class PoolChanged(Exception):
    """The pool was changed elsewhere (an admin) since this worker read it: re-read it, then pick."""


@dataclass
class Wait:
    """The soonest return among the keys passed over by `pick`."""

    soonest: float = INDEFINITELY
    usable_waiting: bool = False
    usable_resting: bool = False

    def note(self, back_at: float, disabled: bool, resting: bool) -> None:
        self.soonest = min(self.soonest, back_at)
        if not disabled:
            self.usable_waiting = True
            self.usable_resting = self.usable_resting or resting

    def error(self, now: float, cap: float) -> NoUsableKey:
        if self.soonest == INDEFINITELY:
            return NoUsableKey(None)
        return NoUsableKey(min(max(self.soonest - now, 0.0), cap), self.usable_resting or not self.usable_waiting)


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
        self._noted: dict[tuple, float] = {}  # when this worker last changed a disable, cooldown or count

    def load(self, snapshot: PoolSnapshot) -> None:
        """Replace the pool with the durable state (the database's, shared by all workers).

        Changes this worker made since `RECENT_SECONDS` before `snapshot.read_at` are kept.
        """
        with self._lock:
            recent = -INDEFINITELY if snapshot.read_at is None else snapshot.read_at - RECENT_SECONDS
            self._keys = sorted(snapshot.keys, key=lambda key: key.id)
            present = {key.id for key in self._keys}
            self._disabled = self._merged(snapshot.disabled_until, self._disabled, "disabled", recent, present)
            self._cooldowns = self._merged(snapshot.cooldowns, self._cooldowns, "cool", recent, present)
            self._failures = self._merged(snapshot.failures, self._failures, "failures", recent, present,
                                          combine=lambda mine, stored: mine)
            self._noted = {slot: at for slot, at in self._noted.items() if at >= recent}
            self._next %= max(len(self._keys), 1)

    def _merged(self, stored: dict, local: dict, kind: str, recent: float, present: set[int],
                combine: Callable[[float, float], float] = max) -> dict:
        """`stored`, with this worker's own recent changes (to keys still present) laid over it."""
        merged = dict(stored)
        for slot, value in local.items():
            key_id = slot[0] if isinstance(slot, tuple) else slot
            if key_id in present and self._noted.get((kind, slot), -INDEFINITELY) >= recent:
                merged[slot] = combine(value, merged.get(slot, value))
        return merged

    def _note(self, kind: str, slot: object) -> None:
        self._noted[(kind, slot)] = self._clock()

    def keys(self) -> list[PoolKey]:
        """Every key in the pool, whatever its state."""
        with self._lock:
            return list(self._keys)

    def pick(self, model: str, exclude: Iterable[int] = ()) -> PoolKey:
        """The next usable key for `model`, not in `exclude`; `NoUsableKey` if none."""
        return self.pick_local(model, exclude)

    def pick_local(self, model: str, exclude: Iterable[int] = ()) -> PoolKey:
        """`pick` from this worker's own state."""
        excluded = set(exclude)
        with self._lock:
            now = self._clock()
            wait = Wait()
            count = len(self._keys)
            for offset in range(count):
                index = (self._next + offset) % count
                key = self._keys[index]
                off_until = self._disabled_until(key.id, now)
                if off_until == INDEFINITELY:
                    continue
                rests_until = self._cooldowns.get((key.id, ALL_MODELS), 0.0)
                back_at = max(off_until, rests_until, self._cooldowns.get((key.id, model), 0.0))
                if back_at <= now and key.id not in excluded:
                    self._next = index + 1
                    return key
                wait.note(max(back_at, now), off_until > now, rests_until > now)
        raise wait.error(now, self.policy.retry_after_max)

    def pick_key(self, key_id: int, model: str) -> PoolKey:
        """Key `key_id` itself if it can serve `model` now (a file or cache lives in its project).

        `NoUsableKey` says when it will be back (None: disabled until an admin acts, or gone).
        """
        with self._lock:
            now = self._clock()
            key = next((key for key in self._keys if key.id == key_id), None)
            off_until = INDEFINITELY if key is None else self._disabled_until(key_id, now)
            if off_until == INDEFINITELY:
                raise NoUsableKey(None)
            rests_until = self._cooldowns.get((key_id, ALL_MODELS), 0.0)
            back_at = max(off_until, rests_until, self._cooldowns.get((key_id, model), 0.0))
            if back_at <= now:
                return key
            wait = Wait()
            wait.note(back_at, off_until > now, rests_until > now)
        raise wait.error(now, self.policy.retry_after_max)

    def _disabled_until(self, key_id: int, now: float) -> float:
        until = self._disabled.get(key_id)
        if until is None:
            return 0.0
        if until > now:
            return until
        del self._disabled[key_id]  # a timed disable has run out: the key is back, its count starts over
        self._failures[key_id] = 0
        return 0.0

    def succeeded(self, key_id: int, model: str) -> bool:
        """A call worked: the key's failure counts and the model's backoff start over.

        Returns whether the key had (durable) failures to forget.
        """
        with self._lock:
            had_failures = self._failures.get(key_id, 0) > 0
            self._failures[key_id] = 0
            self._note("failures", key_id)
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
            return self._cool(key_id, model, until)

    def _cool(self, key_id: int, model: str, until: float) -> float:
        slot = (key_id, model)
        self._cooldowns[slot] = max(until, self._cooldowns.get(slot, 0.0))
        self._note("cool", slot)
        return self._cooldowns[slot]

    def _backoff(self, streak: int) -> float:
        return min(self.policy.cooldown_base * 2 ** (streak - 1), self.policy.cooldown_max)

    def failed(self, key_id: int) -> tuple[int, float | None]:
        """Count a key-attributable failure; returns (consecutive failures, disabled until)."""
        with self._lock:
            failures = self._failures.get(key_id, 0) + 1
            self._failures[key_id] = failures
            self._note("failures", key_id)
            if failures < self.policy.max_failures:
                return failures, None
            return failures, self._disable(key_id, self._clock() + self.policy.disable_seconds)

    def _disable(self, key_id: int, until: float) -> float:
        self._disabled[key_id] = until
        self._note("disabled", key_id)
        return until

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
        return self._cool(key_id, ALL_MODELS, until)

    def rejected(self, key_id: int) -> None:
        """The upstream refuses the key itself: out until an admin enables it."""
        with self._lock:
            self._disable(key_id, INDEFINITELY)

    def enable(self, key_id: int) -> None:
        """Put a key back in rotation for every model."""
        with self._lock:
            self._disabled.pop(key_id, None)
            self._failures[key_id] = 0
            self._strikes.pop(key_id, None)
            for slot in [slot for slot in self._cooldowns if slot[0] == key_id]:
                del self._cooldowns[slot]
            self._noted = {slot: at for slot, at in self._noted.items() if not self._about(slot, key_id)}

    @staticmethod
    def _about(noted: tuple, key_id: int) -> bool:
        slot = noted[1]
        return (slot[0] if isinstance(slot, tuple) else slot) == key_id

    def find(self, key_id: int) -> PoolKey | None:
        """The key with `key_id`, whatever its state."""
        with self._lock:
            return next((key for key in self._keys if key.id == key_id), None)

    def cooldowns(self) -> dict[tuple[int, str], float]:
        """Cooldowns still running, by (key id, model)."""
        with self._lock:
            now = self._clock()
            return {slot: until for slot, until in self._cooldowns.items() if until > now}

    # Hooks for a rotator whose state is shared with other workers (see `SharedKeyRotator`).

    def version(self) -> str | None:
        """The shared pool version, read before the database so a change made meanwhile is noticed."""
        return None

    def announce(self) -> None:
        """The pool was changed here (already committed): tell every other worker to re-read it."""

    def needs_reload(self) -> bool:
        """Whether the pool must be re-read before the next pick (e.g. shared state is back after an outage)."""
        return False
