"""The sweeper: settles the holds nobody settled, so no reserved money stays stuck.

A hold outlives its request only when the worker died before settling (killed, crashed, the
host lost) or the database stayed unreachable through every retry of the settlement. Once
such a hold passes its `expires_at` (`VAULT_HOLD_MAX_AGE_SECONDS` after it was taken),
`abandoned.sweep_abandoned` settles it as `abandoned` at its estimate.

Sweeps run at start (`vault.bootstrap`), with `flask --app wsgi billing sweep`, and in each
worker at most every `VAULT_SWEEP_INTERVAL_SECONDS`, piggy-backed on requests: the first
request after the interval starts one sweep in a background thread (a greenlet under
gunicorn's gevent worker), so no request waits for it and an idle worker does nothing. Any
number of workers and hosts may sweep at once.
"""

import logging
import threading
import time
from collections.abc import Callable

from flask import Flask, current_app
from sqlalchemy.orm import Session

from vault.billing import abandoned
from vault.clock import utcnow

log = logging.getLogger(__name__)


class Sweeper:
    """Sweeps abandoned holds now (`sweep`) or in the background when due (`tick`)."""

    def __init__(self, session_factory: Callable[[], Session], interval: float,
                 clock: Callable[[], float] = time.monotonic):
        self._sessions = session_factory
        self._interval = interval
        self._clock = clock
        self._last = clock()  # the start-up sweep has just run (bootstrap)
        self._running = threading.Lock()

    def sweep(self) -> int:
        """Settle every expired hold now; return how many this worker settled."""
        with self._sessions() as session:
            return abandoned.sweep_abandoned(session, utcnow())

    def tick(self) -> None:
        """Start a background sweep if one is due and none is running (cheap when not due)."""
        if self._interval <= 0 or self._clock() - self._last < self._interval:
            return
        if not self._running.acquire(blocking=False):
            return
        self._last = self._clock()
        threading.Thread(target=self._run, name="vault-sweeper", daemon=True).start()

    def _run(self) -> None:
        try:
            swept = self.sweep()
            if swept:
                log.info("sweeper settled %d abandoned hold(s)", swept)
        except Exception:
            log.exception("sweep of abandoned holds failed; the next one retries")
        finally:
            self._running.release()


def install_sweeper(app: Flask) -> None:
    """Let requests wake the worker's sweeper when a sweep is due."""

    @app.before_request
    def wake_sweeper() -> None:
        current_app.extensions["vault"].sweeper.tick()
