"""Raising alerts: each is one `AlertEvent` row whose payload is exactly what the webhook receives.

Every alert is raised once per crossing, by a conditional UPDATE that only one worker can
win: a user's `low_balance_alerted_at` (cleared again once the balance is back at or above
the threshold) and the settings' `pool_low_alerted_at` (cleared once enough keys are usable
again). A key is disabled once per disable, so `key_disabled` needs no such flag.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from vault.billing.money import nano_to_json
from vault.clock import isoformat
from vault.models import AlertEvent, AlertSettings, UpstreamCooldown, UpstreamKey, UpstreamKeyState, User
from vault.pool.rotator import ALL_MODELS

KINDS = ("low_balance", "pool_low", "key_disabled")


@dataclass(frozen=True)
class Channels:
    """Where a new alert goes: the webhook (configured or not) and email (SMTP set and an address)."""

    webhook: bool
    email: bool


def add_event(session: Session, kind: str, payload: dict, now: datetime) -> AlertEvent:
    """Record one alert, going nowhere until `route` gives it its channels; its payload gains its id, type and
    time, as the receiver will see them."""
    event = AlertEvent(kind=kind, payload={}, created_at=now, state="none", next_attempt_at=now, email_state=None)
    session.add(event)
    session.flush()
    event.payload = {"id": event.id, "type": kind, "created_at": isoformat(now)} | payload
    return event


def route(events: Iterable[AlertEvent], channels: Channels) -> None:
    """Send freshly raised `events` to `channels`, read once the scan that raised them is over: a webhook
    saved before a crossing was seen gets that alert."""
    for event in events:
        event.state = "pending" if channels.webhook else "none"
        event.email_state = "pending" if channels.email else None


def below_threshold(user_ids: Iterable[int] | None = None):
    """Users below their own threshold and not yet alerted (`user_ids`: only these)."""
    query = select(User).where(User.low_balance_threshold_nano.is_not(None), User.low_balance_alerted_at.is_(None),
                               User.balance_nano < User.low_balance_threshold_nano)
    return query if user_ids is None else query.where(User.id.in_(list(user_ids)))


def raise_low_balances(session: Session, now: datetime, user_ids: Iterable[int] | None = None) -> list[AlertEvent]:
    """A `low_balance` alert for each user who fell below their threshold since their last one."""
    raised = []
    for user in session.scalars(below_threshold(user_ids)).all():
        won = session.execute(update(User).where(
            User.id == user.id, User.low_balance_alerted_at.is_(None),
            User.balance_nano < User.low_balance_threshold_nano,
        ).values(low_balance_alerted_at=now).execution_options(synchronize_session=False)).rowcount
        if won:
            raised.append(add_event(session, "low_balance", low_balance_payload(user), now))
    return raised


def low_balance_payload(user: User) -> dict:
    """Who ran low, with their balance and threshold in USD."""
    return {"user": {"id": user.id, "email": user.email}, "balance": nano_to_json(user.balance_nano),
            "threshold": nano_to_json(user.low_balance_threshold_nano or 0)}


def rearm_low_balances(session: Session) -> int:
    """Clear the alert of users topped up to their threshold or above (or with none): the next fall alerts again."""
    return session.execute(update(User).where(User.low_balance_alerted_at.is_not(None), or_(
        User.low_balance_threshold_nano.is_(None), User.balance_nano >= User.low_balance_threshold_nano,
    )).values(low_balance_alerted_at=None).execution_options(synchronize_session=False)).rowcount


def usable_keys(session: Session, now: datetime) -> tuple[int, int]:
    """(usable, total): keys in the pool, and those active and not resting for every model after their breaker."""
    resting = select(UpstreamCooldown.upstream_key_id).where(
        UpstreamCooldown.model == ALL_MODELS, UpstreamCooldown.until > now)
    in_pool = UpstreamKey.state != UpstreamKeyState.DELETED
    total = session.scalar(select(func.count()).select_from(UpstreamKey).where(in_pool)) or 0
    usable = session.scalar(select(func.count()).select_from(UpstreamKey).where(
        UpstreamKey.state == UpstreamKeyState.ACTIVE, UpstreamKey.id.not_in(resting))) or 0
    return usable, total


def check_pool(session: Session, settings: AlertSettings | None, now: datetime) -> AlertEvent | None:
    """A `pool_low` alert when fewer than `min_usable_keys` keys are usable (once until it recovers)."""
    if settings is None or settings.min_usable_keys is None:
        return None
    usable, total = usable_keys(session, now)
    if usable >= settings.min_usable_keys:
        session.execute(update(AlertSettings).where(AlertSettings.id == settings.id)
                        .values(pool_low_alerted_at=None).execution_options(synchronize_session=False))
        return None
    won = session.execute(update(AlertSettings).where(
        AlertSettings.id == settings.id, AlertSettings.pool_low_alerted_at.is_(None),
    ).values(pool_low_alerted_at=now).execution_options(synchronize_session=False)).rowcount
    if not won:
        return None
    payload = {"usable_keys": usable, "total_keys": total, "min_usable_keys": settings.min_usable_keys}
    return add_event(session, "pool_low", payload, now)


def raise_key_disabled(session: Session, key_id: int, reason: str, now: datetime) -> AlertEvent | None:
    """A `key_disabled` alert for key `key_id`, if it is (still) disabled."""
    key = session.get(UpstreamKey, key_id)
    if key is None or key.state != UpstreamKeyState.DISABLED:
        return None
    usable, total = usable_keys(session, now)
    payload = {"key": {"id": key.id, "label": key.label, "key": key.masked},
               "reason": key.disabled_reason or reason, "disabled_until": isoformat(key.disabled_until),
               "usable_keys": usable, "total_keys": total}
    return add_event(session, "key_disabled", payload, now)


def recent_events(session: Session, limit: int = 50, kind: str | None = None) -> list[AlertEvent]:
    """The newest alerts first."""
    query = select(AlertEvent).order_by(AlertEvent.id.desc()).limit(limit)
    return list(session.scalars(query.where(AlertEvent.kind == kind) if kind else query))


def event_json(event: AlertEvent) -> dict:
    """An alert with its delivery state, as admins see it."""
    return {"id": event.id, "type": event.kind, "created_at": isoformat(event.created_at), "payload": event.payload,
            "state": event.state, "attempts": event.attempts, "next_attempt_at": isoformat(event.next_attempt_at)
            if event.state == "pending" else None, "last_status": event.last_status, "last_error": event.last_error,
            "delivered_at": isoformat(event.delivered_at), "email_state": event.email_state}

