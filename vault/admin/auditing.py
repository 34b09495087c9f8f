"""Recording admin actions from the admin views: who (the signed-in admin) and from where.

The snapshots here are the before/after an entry keeps for each kind of target; the API and the
pages take the same ones, so an action reads alike whichever way it was made.
"""

from typing import Any

from flask import request
from sqlalchemy import select

from vault import accounts, audit, pool
from vault.auth.identity import require_user
from vault.billing.money import nano_to_usd
from vault.extensions import db
from vault.models import (
    ApiKey,
    AuditEntry,
    BalanceAdjustment,
    Invite,
    ModelAlias,
    ModelPrice,
    ModelSetting,
    UpstreamKey,
    User,
)
from vault.policies.rules import KEY_COLUMNS
from vault.runtime import runtime

USER_STATE = ("is_active", "is_admin")
POOL_COLUMNS = ("state", "label", "disabled_reason", "disabled_until", "consecutive_failures")


def audited(action: str, target: str = "", before: dict[str, Any] | None = None,
            after: dict[str, Any] | None = None, only_changes: bool = True) -> AuditEntry:
    """Record the current admin's `action` on `target` in the session (committed with the change)."""
    return audit.record(db.session, require_user(), action, target, before, after, request.remote_addr or "",
                        only_changes)


def audited_change(action: str, target: str, before: dict[str, Any] | None,
                   after: dict[str, Any] | None) -> AuditEntry | None:
    """Like `audited`, but a change that changed nothing leaves no entry."""
    if before == after:
        return None
    return audited(action, target, before, after)


def usd_text(nano: int) -> str:
    """nano-USD as exact USD text (`"12.5"`), so an entry never rounds money."""
    return format(nano_to_usd(nano).normalize(), "f")


def audit_balance(user_id: int, adjustment: BalanceAdjustment) -> AuditEntry:
    """Record a balance change just made: the stored balance before and after, how, and why.

    Read after the atomic update, in its transaction, so `before` is exactly what it replaced.
    """
    after = db.session.scalar(select(User.balance_nano).where(User.id == user_id))
    return audited("user.balance", f"user:{user_id}", {"balance": usd_text(after - adjustment.amount_nano)},
                   {"balance": usd_text(after), "change": adjustment.kind, "amount": usd_text(adjustment.amount_nano),
                    "reason": adjustment.reason}, only_changes=False)


def user_state(user: User) -> dict[str, Any]:
    return audit.snapshot(user, USER_STATE)


def user_limits(user: User) -> dict[str, Any]:
    return {"limits": dict(user.limits) if user.limits else None}


def key_policy(key: ApiKey) -> dict[str, Any]:
    """A Vault key's own policy columns (the spend cap in nano-USD)."""
    return audit.snapshot(key, KEY_COLUMNS)


def pool_key(key: UpstreamKey) -> dict[str, Any]:
    """A pooled key's state and label, and its proxy only in masked form."""
    return audit.snapshot(key, POOL_COLUMNS) | {"proxy": pool.masked_proxy(key, runtime().secret_box)}


def price_row(row: ModelPrice | None) -> dict[str, Any] | None:
    """A model's stored prices (nano-USD per 1M tokens), without the time it was written."""
    found = audit.snapshot(row)
    return None if found is None else {name: value for name, value in found.items() if name != "updated_at"}


def alias_row(row: ModelAlias | None) -> dict[str, Any] | None:
    return audit.snapshot(row, ("target", "defaults"))


def model_setting(row: ModelSetting | None) -> dict[str, Any]:
    """A model's routing settings; no row is the defaults."""
    return {"hidden": bool(row and row.hidden), "fallback": list(row.fallback) if row and row.fallback else None}


def invite_row(invite: Invite | None) -> dict[str, Any] | None:
    """An invite as an entry keeps it: never its code."""
    return audit.snapshot(invite, ("prefix", "note", "expires_at", "used_at"))


def audit_invite_created(invite: Invite) -> AuditEntry:
    return audited("invite.create", f"invite:{invite.id}", None, invite_row(invite))


def revoke_invite(invite_id: int) -> AuditEntry:
    """Revoke an unused invite and record what it was (`NotFound`/`Conflict` leave no entry)."""
    before = invite_row(db.session.get(Invite, invite_id))
    accounts.revoke_invite(db.session, invite_id)
    return audited("invite.revoke", f"invite:{invite_id}", before, None)
