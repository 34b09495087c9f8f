"""Recording admin actions from the admin views: who (the signed-in admin) and from where."""

from typing import Any

from flask import request

from vault import audit
from vault.auth.identity import require_user
from vault.extensions import db
from vault.models import AuditEntry


def audited(action: str, target: str = "", before: dict[str, Any] | None = None,
            after: dict[str, Any] | None = None, only_changes: bool = True) -> AuditEntry:
    """Record the current admin's `action` on `target` in the session (committed with the change)."""
    return audit.record(db.session, require_user(), action, target, before, after, request.remote_addr or "",
                        only_changes)
