"""Settlements written behind the answers: many calls per transaction, never one lost silently.

A call's settlement (its usage record, its cost, its hold released) is queued when the call
ends and written by one background writer per process, which gathers what `delay` seconds
bring and commits the lot in one transaction (`ledger.settle_batch`). The durable hold each
call took before it was forwarded keeps the books exact meanwhile:

    balance = Σ adjustments − Σ settled costs − Σ open holds

holds at every commit, whether a settlement is queued, written or lost with its process. A
process killed with settlements still queued leaves their holds pending; the sweeper settles
them as `abandoned` at their estimate once they expire, so every call still has exactly one
record. A graceful stop (SIGTERM, a restart, `max_requests`) writes the queue first
(`close`, also registered with `atexit`).

A batch that meets a constraint (a call settled meanwhile by the sweeper, a key deleted
meanwhile) is written call by call with `ledger.settle`'s rules, and a call that can never be
written (its user deleted meanwhile) is logged and dropped, so it cannot block the others; a
database error is retried with backoff, then the calls stay queued for the next round while
the process lives.
`delay` 0 writes each settlement at once, in the caller (what tests use).
"""

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from vault.billing import ledger
from vault.database import unpinged

log = logging.getLogger(__name__)

# Seconds to wait before each new attempt at a batch that met a database error.
RETRY_DELAYS = (0.05, 0.25, 1.0)


class SettlementWriter:
    """Queues settlements and writes them in batches from one background thread (a greenlet under gevent)."""

    def __init__(self, engine: Engine, session_factory: Callable[[], Session], delay: float, max_batch: int = 500,
                 retry_delays: tuple[float, ...] = RETRY_DELAYS,
                 on_settled: Callable[[set[int]], None] | None = None):
        self._engine = engine  # batches go through a plain connection: no ORM bookkeeping needed there
        self._sessions = session_factory  # the one-by-one path, with `ledger.settle`'s rules
        self.delay = delay
        self._max_batch = max_batch
        self._retry_delays = retry_delays
        # Told which users' settlements were just committed (the alert monitor); it must only note.
        self._on_settled = on_settled or (lambda user_ids: None)
        self._queue: list[ledger.Settlement] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._writing = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        atexit.register(self.close)

    def submit(self, entry: ledger.Settlement) -> None:
        """Queue one call's settlement (or write it now when `delay` is 0)."""
        if self.delay <= 0 or self._closed.is_set():
            if self._write_all([entry]):
                log.error("settlement %s FAILED: user %s hold %s cost %s; the hold stays pending for the sweeper",
                          entry.settlement_id, entry.user_id, entry.hold, entry.cost)
            return
        with self._lock:
            self._queue.append(entry)
            self._ensure_thread()
        self._wake.set()

    def pending(self) -> int:
        """How many settlements are queued and not yet written."""
        with self._lock:
            return len(self._queue)

    def flush(self) -> bool:
        """Write everything queued now, in the caller, until the queue is empty; False if some
        had to stay queued."""
        while self.pending():
            if not self._write_queued():
                return False
        return True

    def _write_queued(self) -> bool:
        """Write what is queued at this moment (calls queued meanwhile wait for the next round)."""
        with self._writing:
            with self._lock:
                batch, self._queue = self._queue, []
            left = self._write_all(batch) if batch else []
            if left:
                with self._lock:
                    self._queue[:0] = left
            return not left

    def close(self) -> None:
        """Write what is queued and stop the background writer (the process is ending)."""
        self._closed.set()
        self._wake.set()
        if self.pending():
            self.flush()

    def _ensure_thread(self) -> None:
        # A forked worker inherits the object but not the thread: start one per process.
        if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="settlement-writer", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._closed.is_set():
            self._wake.wait()
            self._wake.clear()
            self._closed.wait(self.delay)  # let the calls ending meanwhile join this batch
            try:
                # One round per wake: what ends while it is written joins the next batch, after
                # the next delay, instead of making a stream of small ones.
                written = self._write_queued()
            except Exception:  # the writer must outlive any one bad batch
                log.exception("settlement writer: a batch failed; its calls stay queued")
                written = False
            if not written:
                self._closed.wait(self._retry_delays[-1])
            if self.pending():
                self._wake.set()

    def _write_all(self, batch: list[ledger.Settlement]) -> list[ledger.Settlement]:
        """Write `batch` in transactions of at most `max_batch`; return what could not be written."""
        for start in range(0, len(batch), self._max_batch):
            left = self._write(batch[start:start + self._max_batch])
            if left:
                return left + batch[start + self._max_batch:]
        return []

    def _write(self, batch: list[ledger.Settlement]) -> list[ledger.Settlement]:
        """One transaction for `batch`, retried on database errors; return what could not be written."""
        for delay in (*self._retry_delays, None):
            try:
                with unpinged():  # a dead connection fails the batch, which is retried anyway
                    connection = self._engine.connect()
                with connection:
                    ledger.settle_batch(connection, batch)
                self._on_settled({entry.user_id for entry in batch})
                return []
            except IntegrityError:
                return self._write_one_by_one(batch)
            except SQLAlchemyError as exc:
                if delay is None:
                    log.error("settlement writer: %d settlements not written (%s); they stay queued and their "
                              "holds pending until written or swept", len(batch), type(exc).__name__)
                    return batch
                log.warning("settlement writer: batch of %d failed (%s); retrying in %ss", len(batch),
                            type(exc).__name__, delay)
                time.sleep(delay)
        return batch

    def _write_one_by_one(self, batch: list[ledger.Settlement]) -> list[ledger.Settlement]:
        """A batch that met a constraint: each call with `ledger.settle`'s rules (duplicates, deleted keys)."""
        for number, entry in enumerate(batch):
            try:
                with self._sessions() as session:
                    settled = ledger.settle(session, entry)
            except (IntegrityError, DataError) as exc:
                # Never writable as it is (its user was deleted meanwhile, say): waiting would block
                # every settlement behind it. Its hold, if any is left, goes to the sweeper.
                log.error("settlement %s cannot be written (%s: %s); dropped, its hold is left to the sweeper",
                          entry.settlement_id, type(exc).__name__, exc.orig)
                continue
            except SQLAlchemyError as exc:
                log.warning("settlement %s failed (%s); it stays queued", entry.settlement_id, type(exc).__name__)
                return batch[number:]
            if not settled:
                log.warning("settlement %s was already settled (swept as abandoned?); its cost %s was not charged",
                            entry.settlement_id, entry.cost)
        self._on_settled({entry.user_id for entry in batch})
        return []
