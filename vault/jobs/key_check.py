"""Checking many pool keys in the background: the same cheap call as a key's own "Check" button.

Each key gets one upstream call (list one model) through `check_key`, whose outcome the pool's
health records exactly as it would a proxied request's: a key the upstream rejects is
disabled, a 429 cools it, a success ends its failure streak. Keys are taken as the rotator
knows them: one disabled is reported `disabled`, one cooling for the check's call (or resting
after its breaker) is reported `cooling` -- neither is called.

One check runs at a time: each makes up to `concurrency` upstream calls at once, and a second
beside it (two admins, a double click) would double the load on the upstream for nothing.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vault.clock import utcnow
from vault.jobs import active_job, create_job, latest_job, run_job, start_in_background
from vault.models import Job, UpstreamKey, UpstreamKeyState
from vault.pool.classify import Verdict
from vault.pool.health import PoolHealth
from vault.pool.rotator import NoUsableKey
from vault.upstream.client import UpstreamClient
from vault.upstream.failover import check_key

KIND = "pool.check"
CHECK_MODEL = ""  # the check lists models: it is no call of any one model (see `check_key`)
OUTCOMES = {Verdict.OK: "ok", Verdict.KEY_REJECTED: "invalid", Verdict.RATE_LIMITED: "rate_limited"}


@dataclass(frozen=True)
class Checker:
    """What a check needs, taken from the app before the request ends."""

    sessions: Callable[[], Session]
    health: PoolHealth
    upstream: UpstreamClient
    concurrency: int


def keys_to_check(session: Session, ids: list[int] | None) -> list[tuple[int, str, bool]]:
    """(id, masked, disabled) of the pooled keys among `ids` (every pooled key without), oldest first."""
    query = select(UpstreamKey.id, UpstreamKey.masked, UpstreamKey.state).where(
        UpstreamKey.state != UpstreamKeyState.DELETED).order_by(UpstreamKey.id)
    rows = session.execute(query).all()
    if ids is not None:
        wanted = set(ids)
        rows = [row for row in rows if row.id in wanted]
    return [(row.id, row.masked, row.state is UpstreamKeyState.DISABLED) for row in rows]


def start_check(session: Session, checker: Checker, ids: list[int] | None, created_by: int | None,
                record: Callable[[], Any] = lambda: None) -> tuple[Job, bool]:
    """Create a check job over `ids` (every pooled key if None), commit it with what `record()` adds to the
    session (its audit entry) and start it in the background: the job and True.

    While a check is queued or running, that job and False instead: nothing is started or recorded.
    """
    running = active_job(session, KIND, utcnow())
    if running is not None:
        return running, False
    keys = keys_to_check(session, ids)
    try:
        job = create_job(session, KIND, len(keys), {"ids": ids}, created_by, exclusive=True)
    except IntegrityError:  # another request started one between the look above and this insert
        session.rollback()
        winner = latest_job(session, KIND, utcnow())
        if winner is None:
            raise
        return winner, False
    record()
    session.commit()
    checker.health.refresh(force=True)  # judge cooldowns and disables on the pool as it is now
    start_in_background(partial(run_job, checker.sessions, job.id, keys, partial(check_one, checker),
                                checker.concurrency))
    return job, True


def check_one(checker: Checker, item: tuple[int, str, bool]) -> dict:
    """Check one key unless it is disabled or cooling; its result for the job (never raises)."""
    key_id, masked, disabled = item
    result = {"id": key_id, "key": masked}
    if disabled:
        return result | {"result": "disabled", "detail": "disabled: not called"}
    try:
        key = checker.health.rotator.pick_key(key_id, CHECK_MODEL)
    except NoUsableKey as exc:
        if exc.retry_after is None:
            return result | {"result": "disabled", "detail": "disabled: not called"}
        return result | {"result": "cooling", "detail": f"cooling for {exc.retry_after:.0f}s more: not called"}
    try:
        outcome = check_key(key, checker.upstream, checker.health)
    except Exception as exc:  # noqa: BLE001 -- one key's trouble must not end the check of the others
        return result | {"result": "error", "detail": type(exc).__name__}
    return result | {"result": OUTCOMES.get(outcome.verdict, "failed"),
                     "detail": "works" if outcome.verdict is Verdict.OK else outcome.summary[:200]}
