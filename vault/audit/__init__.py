"""The audit trail: every admin action, recorded in the transaction that makes it.

`record` adds an `AuditEntry` to the session; the caller's commit writes it with the change,
so a change and its entry are never apart. Entries are never changed or deleted (the model
refuses to). `snapshot` turns a row's columns into the JSON an entry keeps as before/after,
leaving secrets out.
"""

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vault.clock import isoformat, utcnow
from vault.models import AuditEntry, User

SECRET_COLUMNS = {"password_hash", "key_hash", "code_hash", "secret_encrypted", "proxy_url_encrypted",
                  "webhook_url_encrypted", "webhook_secret_encrypted", "fingerprint", "upstream_url_encrypted"}


def plain(value: Any) -> Any:
    """A JSON-safe form of a column value."""
    if isinstance(value, datetime):
        return isoformat(value)
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "value") and not isinstance(value, (int, str)):  # enums
        return value.value
    return value


def snapshot(row: Any, columns: tuple[str, ...] | None = None) -> dict[str, Any] | None:
    """`row`'s columns (or the ones named) as JSON-safe values, secrets left out; None for no row."""
    if row is None:
        return None
    names = columns or tuple(column.key for column in row.__table__.columns)
    return {name: plain(getattr(row, name)) for name in names if name not in SECRET_COLUMNS}


def changed(before: dict | None, after: dict | None) -> tuple[dict | None, dict | None]:
    """Only the fields that differ (both sides), so an entry says what changed."""
    if before is None or after is None:
        return before, after
    keys = [key for key in after if before.get(key) != after.get(key)]
    return {key: before.get(key) for key in keys}, {key: after[key] for key in keys}


def record(session: Session, actor: User | None, action: str, target: str = "", before: dict | None = None,
           after: dict | None = None, ip: str = "", only_changes: bool = True) -> AuditEntry:
    """Add one entry for `actor`'s `action` on `target` (e.g. `user:12`); the caller commits."""
    if only_changes:
        before, after = changed(before, after)
    entry = AuditEntry(at=utcnow(), actor_id=actor.id if actor else None, actor_email=actor.email if actor else "",
                       action=action[:64], target=target[:128], before=before, after=after, ip=(ip or "")[:64])
    session.add(entry)
    return entry


def search(session: Session, actor: str = "", action: str = "", since: datetime | None = None,
           until: datetime | None = None, page: int = 1, per_page: int = 50) -> tuple[list[AuditEntry], int]:
    """A page of entries, newest first, filtered by actor (email or id), action (prefix) and time."""
    query = select(AuditEntry)
    if actor:
        numeric = actor.isascii() and actor.isdigit()
        query = query.where(AuditEntry.actor_id == int(actor)) if numeric else query.where(
            AuditEntry.actor_email == actor.strip().lower())
    if action:
        query = query.where(AuditEntry.action.startswith(action, autoescape=True))
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if until is not None:
        query = query.where(AuditEntry.at < until)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    entries = session.scalars(query.order_by(AuditEntry.id.desc()).limit(per_page).offset((page - 1) * per_page))
    return list(entries), int(total)


def entry_json(entry: AuditEntry) -> dict[str, Any]:
    """An entry as the JSON API shows it."""
    return {"id": entry.id, "at": isoformat(entry.at), "actor": entry.actor_email or None, "actor_id": entry.actor_id,
            "action": entry.action, "target": entry.target, "before": entry.before, "after": entry.after,
            "ip": entry.ip or None}
