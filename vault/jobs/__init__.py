"""Background jobs an admin starts and polls: rows in `jobs`, run by the worker that made them.

A job runs in a background thread of the worker that created it (a greenlet under gevent,
whose monkey-patching turns threads into greenlets), working through its items with at most
`concurrency` at a time. Its progress -- `done` of `total`, the results so far -- and a
heartbeat are written to its row about once a second by the job's own thread, so any worker
can answer a poll and the page can show it again after a reload.

A worker that dies (a restart, a crash, a killed container) leaves its job `running` with a
heartbeat that stops: whoever reads the job next, `STALE_SECONDS` after the last beat, marks
it `failed` ("the worker running it stopped") instead of showing it running forever. The
results gathered until then are kept; the admin starts a new check for the rest.

A job created `exclusive` runs alone: while one of its kind is queued or running, no second
one can be created (the unique `active_kind` decides, even between two requests at once).
"""

import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from vault.clock import isoformat, utcnow
from vault.errors import NotFound
from vault.ids import time_ordered_id
from vault.models import Job

log = logging.getLogger(__name__)

BEAT_SECONDS = 1.0  # progress and heartbeat are written at most this often
STALE_SECONDS = 60.0  # a running job whose heartbeat is older than this lost its worker
ACTIVE_STATES = ("queued", "running")


def create_job(session: Session, kind: str, total: int, params: dict[str, Any], created_by: int | None,
               exclusive: bool = False) -> Job:
    """A queued job of `kind` over `total` items (flushed; the caller commits before starting it).

    An `exclusive` one raises `IntegrityError` while another exclusive job of `kind` is active.
    """
    now = utcnow()
    job = Job(id=time_ordered_id(), kind=kind, state="queued", done=0, total=total, params=params, results=[],
              created_by=created_by, created_at=now, heartbeat_at=now, active_kind=kind if exclusive else None)
    session.add(job)
    session.flush()
    return job


def settle_if_stale(session: Session, job: Job, now: datetime) -> Job:
    """Mark `job` failed if its worker stopped beating (committed at once: a poll is a read)."""
    beat = job.heartbeat_at or job.started_at or job.created_at
    if job.state in ACTIVE_STATES and beat < now - timedelta(seconds=STALE_SECONDS):
        session.execute(update(Job).where(Job.id == job.id, Job.state.in_(ACTIVE_STATES)).values(
            state="failed", error="The worker running this job stopped before it finished.", finished_at=now,
            active_kind=None))
        session.commit()
        session.refresh(job)
    return job


def read_job(session: Session, job_id: str, now: datetime) -> Job:
    """The job with `job_id` as it stands (a stale one settled as failed), or `NotFound`."""
    job = session.get(Job, job_id[:32])
    if job is None:
        raise NotFound("No such job.")
    return settle_if_stale(session, job, now)


def active_job(session: Session, kind: str, now: datetime) -> Job | None:
    """The newest job of `kind` still queued or running (any whose worker stopped settled as failed), or None."""
    found = session.scalars(select(Job).where(Job.kind == kind, Job.state.in_(ACTIVE_STATES))
                            .order_by(Job.created_at.desc(), Job.id.desc())).all()
    return next((job for job in found if settle_if_stale(session, job, now).state in ACTIVE_STATES), None)


def latest_job(session: Session, kind: str, now: datetime) -> Job | None:
    """The newest job of `kind`, running or not (what a reloaded page shows), or None."""
    job = session.scalar(select(Job).where(Job.kind == kind).order_by(Job.created_at.desc(), Job.id.desc()).limit(1))
    return settle_if_stale(session, job, now) if job is not None else None


def result_counts(job: Job) -> dict[str, int]:
    """How many items ended with each result (`ok`, `invalid`, `cooling`, ...)."""
    return dict(Counter(str(item.get("result", "")) for item in job.results or []))


def job_json(job: Job, with_results: bool = True) -> dict[str, Any]:
    """A job as the JSON API shows it: `results` only once asked for (they can run to thousands)."""
    body: dict[str, Any] = {"id": job.id, "kind": job.kind, "state": job.state, "done": job.done,
                            "total": job.total, "error": job.error, "created_at": isoformat(job.created_at),
                            "started_at": isoformat(job.started_at), "finished_at": isoformat(job.finished_at)}
    body["counts"] = result_counts(job)
    if with_results:
        body["results"] = job.results or []
    return body


def start_in_background(target: Callable[[], None]) -> threading.Thread:
    """Run `target` beside the request that started it (a greenlet under gevent)."""
    thread = threading.Thread(target=target, name="vault-job", daemon=True)
    thread.start()
    return thread


def run_job(sessions: Callable[[], Session], job_id: str, items: Sequence[Any], work: Callable[[Any], dict],
            concurrency: int, clock: Callable[[], datetime] = utcnow) -> None:
    """Do `work(item)` for every item, at most `concurrency` at once, recording each result in the job.

    `work` returns the item's result (a JSON-safe dict) and should not raise; if it does, the
    job ends `failed` with what was done so far.
    """
    progress = Progress(sessions, job_id, clock)
    progress.start()
    try:
        with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="vault-job") as pool:
            pending: set[Future] = {pool.submit(work, item) for item in items}
            while pending:
                finished, pending = wait(pending, timeout=BEAT_SECONDS, return_when=FIRST_COMPLETED)
                progress.add([future.result() for future in finished])
        progress.finish()
    except Exception:
        log.exception("job %s failed", job_id)
        progress.fail("The job stopped on an unexpected error; see the server log.")


class Progress:
    """A job's results as they come in, written to its row (with the heartbeat) at most once a beat."""

    def __init__(self, sessions: Callable[[], Session], job_id: str, clock: Callable[[], datetime]):
        self._sessions, self._job_id, self._clock = sessions, job_id, clock
        self.results: list[dict] = []
        self._written_at: datetime | None = None

    def start(self) -> None:
        now = self._clock()
        self._write(state="running", started_at=now, heartbeat_at=now)

    def add(self, results: list[dict]) -> None:
        """Take new results; write them (and beat) if a beat has passed since the last write."""
        self.results.extend(results)
        now = self._clock()
        if self._written_at is None or now - self._written_at >= timedelta(seconds=BEAT_SECONDS):
            self._write(done=len(self.results), results=list(self.results), heartbeat_at=now)

    def finish(self) -> None:
        now = self._clock()
        self._write(state="done", done=len(self.results), results=sorted(self.results, key=result_order),
                    heartbeat_at=now, finished_at=now, active_kind=None)

    def fail(self, error: str) -> None:
        now = self._clock()
        self._write(state="failed", error=error[:255], done=len(self.results), results=list(self.results),
                    heartbeat_at=now, finished_at=now, active_kind=None)

    def _write(self, **values: Any) -> None:
        with self._sessions() as session:
            session.execute(update(Job).where(Job.id == self._job_id).values(**values))
            session.commit()
        self._written_at = self._clock()


def result_order(result: dict) -> tuple:
    """Results listed by item id when they have one."""
    return (result.get("id") is None, result.get("id") or 0)
