"""The per-worker alert monitor: notes what happened, then raises and delivers alerts in the background.

The proxy's path only ever *notes* (a key id or a few user ids into a set, under a lock) and
wakes the monitor; the database work, the webhook POSTs and the email all happen in one
background thread per worker (a greenlet under gevent). Every `interval` seconds it also
scans all users and the pool, which catches what no note reported (an admin lowering a
balance, keys cooling down) and re-arms topped-up users.
"""

import logging
import os
import threading
from collections.abc import Callable, Iterable
from datetime import datetime

import requests
from sqlalchemy.orm import Session

from vault.alerts import delivery, mail, raising
from vault.alerts import settings as alert_settings
from vault.clock import utcnow
from vault.security import SecretBox

log = logging.getLogger(__name__)


class Alerts:
    """Raises and delivers this worker's alerts."""

    def __init__(self, session_factory: Callable[[], Session], box: SecretBox, interval: float,
                 policy: delivery.DeliveryPolicy, smtp: mail.SmtpSettings | None = None,
                 clock: Callable[[], datetime] = utcnow, post: delivery.Post | None = None,
                 connect: Callable[..., object] | None = None):
        self._sessions = session_factory
        self._box = box
        self.interval = interval
        self.policy = policy
        self.smtp = smtp
        self.clock = clock
        self._post = post or delivery.post_with(requests.Session())
        self._connect = connect
        self._users: set[int] = set()
        self._keys: dict[int, str] = {}
        self._lock = threading.Lock()
        self._running = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None

    def note_settled(self, user_ids: Iterable[int]) -> None:
        """Settlements of these users were committed: their balances may have crossed a threshold."""
        with self._lock:
            self._users.update(user_ids)
        self._wake.set()

    def note_key_disabled(self, key_id: int, reason: str) -> None:
        """Key `key_id` was disabled (by its traffic or an admin)."""
        with self._lock:
            self._keys[key_id] = reason
        self._wake.set()

    def tick(self) -> None:
        """Make sure this process runs its monitor (a forked worker inherits the object, not the thread)."""
        if self.interval <= 0 or self._stop.is_set():
            return
        if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                    self._pid = os.getpid()
                    self._thread = threading.Thread(target=self._run, name="vault-alerts", daemon=True)
                    self._thread.start()

    def close(self) -> None:
        """Stop the background monitor."""
        self._stop.set()
        self._wake.set()

    def run_once(self, full: bool = True) -> None:
        """Raise what is due (`full`: scan every user and the pool, not only what was noted), then deliver."""
        with self._running:
            self.raise_due(full)
            self.deliver_due()

    def raise_due(self, full: bool = True) -> list:
        """Turn the notes (and with `full`, a scan) into alert rows."""
        with self._lock:
            users, self._users = self._users, set()
            keys, self._keys = self._keys, {}
        now = self.clock()
        with self._sessions() as session:
            row = alert_settings.load(session)
            raising.rearm_low_balances(session)
            raised = raising.raise_low_balances(session, now, None if full else users) if full or users else []
            raised += [event for key_id, reason in keys.items()
                       if (event := raising.raise_key_disabled(session, key_id, reason, now))]
            if full or keys:
                raised += [event for event in [raising.check_pool(session, row, now)] if event]
            if raised:
                # The channels are read after the scan (see `raising.route`).
                if row is not None:
                    session.expire(row)
                raising.route(raised, self._channels(alert_settings.load(session)))
            session.commit()
        for event in raised:
            log.warning("alert %s raised: %s", event.kind, mail.summary(event.kind, event.payload))
        return raised

    def _channels(self, row) -> raising.Channels:
        return raising.Channels(webhook=alert_settings.webhook(row, self._box) is not None,
                                email=bool(self.smtp and row and row.email_to))

    def deliver_due(self) -> None:
        """Send every due webhook delivery and pending email."""
        with self._sessions() as session:
            hook = alert_settings.webhook(alert_settings.load(session), self._box)
            for event in delivery.claim_due(session, self.clock(), self.policy):
                if hook is None:
                    delivery.give_up_without_webhook(session, event)
                    continue
                status, error = delivery.attempt(event, hook, self._post, self.policy.timeout, self.clock())
                state = delivery.record_attempt(session, event, status, error, self.clock(), self.policy)
                if error:
                    log.warning("alert %s delivery attempt %d: %s (%s)", event.id, event.attempts, error, state)
            self.send_emails(session)

    def send_emails(self, session: Session) -> None:
        """Email each alert waiting for it, once."""
        row = alert_settings.load(session)
        for event in delivery.claim_emails(session):
            sent = False
            if self.smtp and row and row.email_to:
                try:
                    connect = self._connect or mail.smtplib.SMTP
                    mail.send(self.smtp, mail.message(event.kind, event.payload, self.smtp.sender, row.email_to),
                              connect)
                    sent = True
                except (OSError, mail.smtplib.SMTPException) as exc:
                    log.warning("alert %s email failed: %s", event.id, type(exc).__name__)
            delivery.record_email(session, event, sent)

    def _run(self) -> None:
        full_at = 0.0
        while not self._stop.is_set():
            started = self.clock().timestamp()
            full = started >= full_at
            try:
                self.run_once(full)
                with self._sessions() as session:
                    due = delivery.next_due(session)
            except Exception:  # the monitor must outlive any one bad round (a database blip)
                log.exception("alert monitor: a round failed; trying again later")
                due = None
            if full:
                full_at = started + self.interval
            self._sleep(full_at, due)

    def _sleep(self, full_at: float, due: datetime | None) -> None:
        until = min(full_at, due.timestamp() if due else full_at)
        self._wake.wait(max(until - self.clock().timestamp(), 0.05))
        self._wake.clear()
        self._stop.wait(0.2)  # let the notes arriving together make one round
