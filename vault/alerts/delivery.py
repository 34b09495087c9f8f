"""Delivering alerts: webhook POSTs claimed by one worker at a time, retried with backoff, and email.

A worker claims a due event with a conditional UPDATE on its attempt count, so two workers
(or hosts) never send the same attempt; a claim is a lease, so an event whose worker died
mid-send is due again when the lease runs out. Each failed attempt waits twice as long as
the one before (`retry_base` × 2ⁿ⁻¹, at most `retry_max`); after `max_attempts` the event
is `failed`. Email is tried once per event.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from vault.alerts.settings import Webhook
from vault.alerts.signing import HEADER, signature
from vault.models import AlertEvent

Post = Callable[[str, bytes, dict[str, str], float], int]
DUE_STATES = ("pending", "sending")


@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard the Vault tries a webhook."""

    max_attempts: int = 6
    retry_base: float = 30.0
    retry_max: float = 3600.0
    timeout: float = 5.0

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed attempt."""
        return timedelta(seconds=min(self.retry_base * 2 ** max(attempts - 1, 0), self.retry_max))

    @property
    def lease(self) -> timedelta:
        """How long a claimed attempt is left to its worker before another may take it over."""
        return timedelta(seconds=self.timeout * 2 + 30)


def post_with(http: requests.Session) -> Post:
    """A `Post` over `http`: the status code, or a `requests` exception; redirects are not followed."""

    def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        with http.post(url, data=body, headers=headers, timeout=timeout, allow_redirects=False, stream=True) as answer:
            return answer.status_code

    return post


def body_of(event: AlertEvent) -> bytes:
    """The exact bytes POSTed (and signed) for `event`."""
    return json.dumps(event.payload, separators=(",", ":")).encode()


def claim_due(session: Session, now: datetime, policy: DeliveryPolicy, limit: int = 20) -> list[AlertEvent]:
    """Take the due webhook deliveries this worker will make now (committed, so nobody else takes them)."""
    due = session.execute(select(AlertEvent.id, AlertEvent.attempts).where(
        AlertEvent.state.in_(DUE_STATES), AlertEvent.next_attempt_at <= now,
    ).order_by(AlertEvent.id).limit(limit)).all()
    claimed = [event_id for event_id, attempts in due if session.execute(update(AlertEvent).where(
        AlertEvent.id == event_id, AlertEvent.attempts == attempts, AlertEvent.state.in_(DUE_STATES),
        AlertEvent.next_attempt_at <= now,
    ).values(state="sending", attempts=attempts + 1, next_attempt_at=now + policy.lease)
        .execution_options(synchronize_session=False)).rowcount]
    session.commit()
    return list(session.scalars(select(AlertEvent).where(AlertEvent.id.in_(claimed)).order_by(AlertEvent.id)))


def attempt(event: AlertEvent, hook: Webhook, post: Post, timeout: float,
            now: datetime) -> tuple[int | None, str | None]:
    """POST `event` once: (status, None) when the receiver took it (2xx), else (status or None, what went wrong)."""
    body = body_of(event)
    headers = {"Content-Type": "application/json", "User-Agent": "Gemini-Vault-Alerts/1",
               HEADER: signature(hook.secret, body, int(now.timestamp())), "X-GV-Event": event.kind}
    try:
        status = post(hook.url, body, headers, timeout)
    except requests.RequestException as exc:
        return None, f"{type(exc).__name__}: could not reach the webhook"
    return status, None if 200 <= status < 300 else f"HTTP {status}"


def record_attempt(session: Session, event: AlertEvent, status: int | None, error: str | None, now: datetime,
                   policy: DeliveryPolicy) -> str:
    """Store how the claimed attempt went; return the event's new state."""
    values: dict = {"last_status": status, "last_error": error, "next_attempt_at": None}
    if error is None:
        values |= {"state": "delivered", "delivered_at": now}
    elif event.attempts >= policy.max_attempts:
        values["state"] = "failed"
    else:
        values |= {"state": "pending", "next_attempt_at": now + policy.backoff(event.attempts)}
    # Only this worker's claim: a lease taken over meanwhile belongs to the other worker now.
    session.execute(update(AlertEvent).where(AlertEvent.id == event.id, AlertEvent.state == "sending",
                                             AlertEvent.attempts == event.attempts).values(**values)
                    .execution_options(synchronize_session=False))
    session.commit()
    return values["state"]


def give_up_without_webhook(session: Session, event: AlertEvent) -> None:
    """The webhook was removed after this event was raised: nothing to deliver it to."""
    session.execute(update(AlertEvent).where(AlertEvent.id == event.id, AlertEvent.state == "sending")
                    .values(state="none", next_attempt_at=None).execution_options(synchronize_session=False))
    session.commit()


def next_due(session: Session) -> datetime | None:
    """When the soonest pending delivery is due."""
    return session.scalar(select(func.min(AlertEvent.next_attempt_at)).where(AlertEvent.state.in_(DUE_STATES)))


def claim_emails(session: Session, limit: int = 20) -> list[AlertEvent]:
    """Take the alerts waiting for their email (one worker each)."""
    waiting = session.scalars(select(AlertEvent.id).where(AlertEvent.email_state == "pending")
                              .order_by(AlertEvent.id).limit(limit)).all()
    claimed = [event_id for event_id in waiting if session.execute(update(AlertEvent).where(
        AlertEvent.id == event_id, AlertEvent.email_state == "pending").values(email_state="sending")
        .execution_options(synchronize_session=False)).rowcount]
    session.commit()
    return list(session.scalars(select(AlertEvent).where(AlertEvent.id.in_(claimed)).order_by(AlertEvent.id)))


def record_email(session: Session, event: AlertEvent, sent: bool) -> None:
    """Store whether the email went out."""
    session.execute(update(AlertEvent).where(AlertEvent.id == event.id)
                    .values(email_state="sent" if sent else "failed").execution_options(synchronize_session=False))
    session.commit()
