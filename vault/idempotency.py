"""Form tokens: each rendered form carries a random token, and a submission does its work once.

A page puts a fresh token in every form it renders; the first POST carrying it claims the token
with one INSERT on the primary key, committed before the work starts (on SQLite a claim kept
open would hold the only write lock, and work done on another connection, a pool key's health
or a hold, would wait for it). A second submission with the same token (a double click, a
resent request after a timeout) finds it taken and does nothing. A submission refused for a
mistake gives its token back (`release`), so the corrected form can be sent again; one whose
worker died mid-way keeps it spent, and a reload of the page brings a new one. Tokens older
than a day are pruned as new ones are claimed.
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
    """Claim `token` for this submission and commit; False if a submission already claimed it.

    Runs before the submission's own writes, in a transaction of its own.
    """
    try:
        session.execute(insert(FormSubmission).values(token=token, user_id=user_id, created_at=now))
    except IntegrityError:
        session.rollback()
        return False
    prune(session, now)
    session.commit()
    return True


def release(session: Session, token: str) -> None:
    """Give a claimed token back (its submission was refused and did nothing)."""
    session.rollback()
    session.execute(delete(FormSubmission).where(FormSubmission.token == token))
    session.commit()


def prune(session: Session, now: datetime) -> int:
    """Forget tokens older than a day (no double click is that slow); how many were removed."""
    result = session.execute(delete(FormSubmission).where(FormSubmission.created_at < now - KEEP))
    return result.rowcount or 0
