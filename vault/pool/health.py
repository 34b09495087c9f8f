"""The rotator kept in step with the pool table: each verdict becomes a change of key health.

Every worker holds a `KeyRotator` in memory for speed; the `upstream_keys` and
`upstream_cooldowns` tables are the durable, shared copy. Health changes are written
through at once, and each worker re-reads the tables every `refresh_seconds`, so keys
disabled, enabled or cooled elsewhere are seen here within that time.

What a verdict does to the key (see `classify` for how verdicts are reached):
OK ends a failure streak; RATE_LIMITED cools the key for the model; KEY_REJECTED disables it
until an admin acts; KEY_FAILURE counts toward a timed disable; a TRANSIENT strike counts
toward the breaker, which rests the key for every model (a cooldown under `ALL_MODELS`,
shown with the others); CLIENT_ERROR, REDIRECTED and SUSPECT change nothing at all -- not
even a failure streak, which only the key's own success may end.
"""

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib import import_module

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session

from vault.models import UpstreamCooldown, UpstreamKey, UpstreamKeyState
from vault.pool.classify import Classification, Verdict, next_daily_reset
from vault.pool.rotator import ALL_MODELS, INDEFINITELY, KeyRotator, NoUsableKey, PoolChanged, PoolKey, PoolSnapshot
from vault.pool.store import upstream_key_proxy
from vault.security import SecretBox

log = logging.getLogger(__name__)

# Answers that say nothing about the key: no counter, streak or state of it changes.
KEY_UNTOUCHED = frozenset({Verdict.CLIENT_ERROR, Verdict.REDIRECTED, Verdict.SUSPECT})


def epoch(moment: datetime) -> float:
    return moment.timestamp()


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@dataclass(frozen=True)
class Cooldown:
    """A rest to store: for one model, or for every model (`ALL_MODELS`) after the breaker tripped."""

    model: str
    until: float
    reason: str


class PoolHealth:
    """Picks keys through the rotator and records every outcome in memory and in the database."""

    def __init__(self, rotator: KeyRotator, session_factory: Callable[[], Session], box: SecretBox,
                 refresh_seconds: float, clock: Callable[[], float] = time.time,
                 on_attempt: Callable[[str], None] | None = None, on_failover: Callable[[], None] | None = None,
                 on_disabled: Callable[[int, str], None] | None = None):
        self.rotator = rotator
        # Told of each key disabled here (by its traffic or an admin); it must only note, never wait.
        self.note_disabled = on_disabled or (lambda key_id, reason: None)
        self.note_attempt = on_attempt or (lambda verdict: None)
        self.note_failover = on_failover or (lambda: None)
        self._sessions = session_factory
        self._box = box
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._loaded_at = -math.inf
        self._loads = 0
        self._refresh_lock = threading.Lock()

    def pick(self, model: str, exclude: set[int]) -> PoolKey:
        """The next usable key for `model` (raises `NoUsableKey`)."""
        self.refresh()
        for _ in range(2):
            try:
                return self.rotator.pick(model, exclude)
            except PoolChanged:
                # An admin changed the pool elsewhere: re-read it, never hand out a key it removed.
                self._reload(wait=True, unless_reloaded=True)
        return self.rotator.pick_local(model, exclude)  # still changing: answer from what was just read

    def pick_key(self, key_id: int, model: str) -> PoolKey:
        """Key `key_id` if it can serve `model` now (raises `NoUsableKey`), from a fresh enough pool."""
        self.refresh()
        return self.rotator.pick_key(key_id, model)

    def retry_after(self, model: str) -> float | None:
        """Seconds until some key can serve `model` (0: one can now), or None if none will by itself."""
        everyone = {key.id for key in self.rotator.keys()}
        try:
            try:
                self.rotator.pick(model, everyone)
            except PoolChanged:
                self.rotator.pick_local(model, everyone)
        except NoUsableKey as exc:
            return exc.retry_after
        return 0.0  # not reached: every key is excluded

    def refresh(self, force: bool = False) -> None:
        """Re-read the pool if it is older than `refresh_seconds`, or when shared state asks for it.

        With `force` -- after an admin's change, already committed -- re-read it at once and
        tell every other worker to re-read it too (through Redis, when there is one).
        """
        if force:
            self._reload(wait=True)
            self.rotator.announce()
            return
        if self._clock() - self._loaded_at < self._refresh_seconds and not self.rotator.needs_reload():
            return
        self._reload(wait=self._loaded_at == -math.inf)

    def _reload(self, wait: bool, unless_reloaded: bool = False) -> None:
        loads = self._loads
        if not self._refresh_lock.acquire(blocking=wait):
            return  # another greenlet is refreshing; the current state is fresh enough
        try:
            if unless_reloaded and self._loads != loads:
                return  # another greenlet read it while this one waited for the lock
            now = self._clock()
            version = self.rotator.version()  # before the database, so a change made meanwhile shows
            with self._sessions() as session:
                snapshot = read_snapshot(session, self._box, now)
            self.rotator.load(replace(snapshot, read_at=now, version=version))
            self._loaded_at = now
            self._loads += 1
        finally:
            self._refresh_lock.release()

    def record(self, key: PoolKey, model: str, outcome: Classification) -> None:
        """Act on one upstream answer: update the rotator, then persist any change of health.

        A success changes nothing durable unless it ends a run of failures; its use is
        counted by `record_use` with the rest of the request's bookkeeping.
        """
        self.note_attempt(outcome.verdict.value)
        if outcome.verdict is Verdict.OK:
            if self.rotator.succeeded(key.id, model):
                self._persist(key.id, {"consecutive_failures": 0})
            return
        if outcome.verdict in KEY_UNTOUCHED:
            return
        now = self._clock()
        values: dict = {"request_count": UpstreamKey.request_count + 1, "last_used_at": from_epoch(now),
                        "last_error": outcome.summary[:500], "last_error_at": from_epoch(now)}
        if outcome.verdict is not Verdict.TRANSIENT or outcome.strike:
            values["failure_count"] = UpstreamKey.failure_count + 1
        cooldown = None
        if outcome.verdict is Verdict.RATE_LIMITED:
            cooldown = self._cool_down(key, model, outcome, now)
        elif outcome.verdict is Verdict.KEY_REJECTED:
            values |= self._reject(key, outcome)
        elif outcome.verdict is Verdict.KEY_FAILURE:
            values |= self._count_failure(key, outcome)
        elif outcome.strike:
            cooldown = self._strike(key, outcome)
        self._persist(key.id, values, cooldown)
        if values.get("state") == UpstreamKeyState.DISABLED:
            self.note_disabled(key.id, values["disabled_reason"])

    def set_enabled(self, key_id: int, enabled: bool) -> None:
        """An admin enabled or disabled a key (already saved): tell every worker at once."""
        if enabled:
            self.rotator.enable(key_id)
        else:
            self.rotator.rejected(key_id)
        self.refresh(force=True)
        if not enabled:
            self.note_disabled(key_id, "disabled by an admin")

    def set_enabled_many(self, key_ids: Iterable[int], enabled: bool) -> None:
        """`set_enabled` for many keys at once (already saved), with a single re-read of the pool."""
        for key_id in key_ids:
            if enabled:
                self.rotator.enable(key_id)
            else:
                self.rotator.rejected(key_id)
        self.refresh(force=True)

    def key(self, key_id: int) -> PoolKey | None:
        """The pooled key with `key_id` as the rotator knows it (after a fresh read)."""
        self._reload(wait=True)
        return self.rotator.find(key_id)

    def proxy_for(self, key_id: int) -> str | None:
        """The egress proxy of key `key_id` as last read (None: the default egress, or no such key)."""
        key = self.rotator.find(key_id)
        return key.proxy_url if key else None

    def _cool_down(self, key: PoolKey, model: str, outcome: Classification, now: float) -> Cooldown:
        until = epoch(next_daily_reset(from_epoch(now))) if outcome.daily_quota else None
        ends = self.rotator.rate_limited(key.id, model, outcome.retry_after, until)
        log.info("upstream key %s cooling down for %s: %.1fs (%s)", key.masked, model or "*", ends - now,
                 outcome.summary)
        return Cooldown(model, ends, outcome.summary)

    def _reject(self, key: PoolKey, outcome: Classification) -> dict:
        self.rotator.rejected(key.id)
        log.warning("upstream key %s disabled: %s", key.masked, outcome.summary)
        return {"state": UpstreamKeyState.DISABLED, "disabled_until": None,
                "disabled_reason": f"rejected by the upstream: {outcome.summary}"[:255]}

    def _strike(self, key: PoolKey, outcome: Classification) -> Cooldown | None:
        strikes, until = self.rotator.faltered(key.id)
        if until is None:
            return None
        reason = f"circuit breaker: {strikes} upstream failures in a row (last: {outcome.summary})"
        log.warning("upstream key %s set aside for %.0fs: %s", key.masked, until - self._clock(), reason)
        return Cooldown(ALL_MODELS, until, reason)

    def _count_failure(self, key: PoolKey, outcome: Classification) -> dict:
        failures, disabled_until = self.rotator.failed(key.id)
        values: dict = {"consecutive_failures": failures}
        if disabled_until is not None:
            log.warning("upstream key %s disabled after %d failures: %s", key.masked, failures, outcome.summary)
            values |= {"state": UpstreamKeyState.DISABLED, "disabled_until": from_epoch(disabled_until),
                       "disabled_reason": f"{failures} consecutive failures: {outcome.summary}"[:255]}
        return values

    def _persist(self, key_id: int, values: dict, cooldown: Cooldown | None = None) -> None:
        with self._sessions() as session:
            # A key deleted while a request was on it stays deleted, whatever that request met.
            changed = session.execute(update(UpstreamKey).where(
                UpstreamKey.id == key_id, UpstreamKey.state != UpstreamKeyState.DELETED).values(**values)).rowcount
            if cooldown is not None and changed:
                upsert_cooldown(session, key_id, cooldown.model, from_epoch(cooldown.until), cooldown.reason)
            session.commit()


def read_snapshot(session: Session, box: SecretBox, now: float) -> PoolSnapshot:
    """The pool as stored (deleted keys left out), with timed disables that have run out switched back on."""
    moment = from_epoch(now)
    session.execute(
        update(UpstreamKey)
        .where(UpstreamKey.state == UpstreamKeyState.DISABLED, UpstreamKey.disabled_until <= moment)
        .values(state=UpstreamKeyState.ACTIVE, disabled_until=None, disabled_reason=None, consecutive_failures=0)
    )
    session.execute(delete(UpstreamCooldown).where(UpstreamCooldown.until <= moment))
    session.commit()
    rows = session.scalars(select(UpstreamKey).where(UpstreamKey.state != UpstreamKeyState.DELETED)
                           .order_by(UpstreamKey.id)).all()
    keys, disabled, failures = [], {}, {}
    for row in rows:
        keys.append(PoolKey(row.id, box.decrypt(row.secret_encrypted), row.masked, upstream_key_proxy(row, box)))
        failures[row.id] = row.consecutive_failures
        if row.state is UpstreamKeyState.DISABLED:
            disabled[row.id] = epoch(row.disabled_until) if row.disabled_until else INDEFINITELY
    cooldowns = {
        (cooldown.upstream_key_id, cooldown.model): epoch(cooldown.until)
        for cooldown in session.scalars(select(UpstreamCooldown)) if cooldown.upstream_key_id in failures
    }
    return PoolSnapshot(keys, disabled, cooldowns, failures)


def upsert_cooldown(session: Session, key_id: int, model: str, until: datetime, reason: str) -> None:
    """Insert or extend the cooldown of (key, model) in one statement."""
    # Only the dialect in use is imported (the other would cost every worker its memory).
    dialect = import_module(f"sqlalchemy.dialects.{session.get_bind().dialect.name}")
    statement = dialect.insert(UpstreamCooldown).values(
        upstream_key_id=key_id, model=model, until=until, reason=reason[:255]
    )
    session.execute(statement.on_conflict_do_update(
        index_elements=["upstream_key_id", "model"],
        set_={"until": statement.excluded.until, "reason": statement.excluded.reason},
    ))


UPSTREAM_KEY_USED = (
    update(UpstreamKey.__table__).where(UpstreamKey.__table__.c.id == bindparam("upstream_key_id"))
    .values(request_count=UpstreamKey.__table__.c.request_count + 1, last_used_at=bindparam("moment"))
)


def record_use(session: Session, upstream_key_id: int, moment: datetime) -> None:
    """Count one successful use of an upstream key (part of the request's final transaction)."""
    session.execute(UPSTREAM_KEY_USED, {"upstream_key_id": upstream_key_id, "moment": moment})
