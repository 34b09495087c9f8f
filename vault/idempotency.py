"""Form tokens: each rendered form carries a random token, and a submission does its work once.

A page puts a fresh token in every form it renders; the first POST carrying it claims the token
with one INSERT on the primary key, in the same transaction as the work. A second submission
with the same token (a double click, a resent request after a timeout) finds it taken and does
nothing. When the work fails and rolls back, the claim goes with it, so the corrected form can be
sent again. Tokens older than a day are pruned as new ones are claimed.
"""

import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vault.models import FormSubmission

FIELD = "form_token"
KEEP = timedelta(days=1)
TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def new_token() -> str:
    """A token for one rendered form (URL-safe, 32 characters)."""
    return secrets.token_urlsafe(24)


def well_formed(token: str) -> bool:
    """Whether `token` could have come from `new_token` (anything else is refused before the database)."""
    return bool(TOKEN_SHAPE.match(token))


def claim(session: Session, token: str, user_id: int | None, now: datetime) -> bool:
    """Claim `token` for this submission; False if a submission already claimed it.

    Must run before the submission's other writes: a refused claim rolls the session back.
    On PostgreSQL a second claim waits for the first transaction, then fails if it committed.
    """
    try:
        session.execute(insert(FormSubmission).values(token=token, user_id=user_id, created_at=now))
    except IntegrityError:
        session.rollback()
        return False
    prune(session, now)
    return True


def prune(session: Session, now: datetime) -> int:
    """Forget tokens older than a day (no double click is that slow); how many were removed."""
    result = session.execute(delete(FormSubmission).where(FormSubmission.created_at < now - KEEP))
    return result.rowcount or 0
