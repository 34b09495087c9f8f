"""Resumable uploads relayed by the Vault: the client's upload URL is itself the credential.

The SDK sends an upload's bytes to the URL the start answer gave, with no API key. So that
URL carries a random token (256 bits) the Vault stores only hashed, bound to the user, the
Vault key and the upstream key (and upstream upload session) that started it. It expires
after `VAULT_UPLOAD_SESSION_SECONDS`, dies when the upload is finalized or cancelled, and is
refused once its Vault key is revoked or its user deactivated. The upstream's own upload URL
is kept encrypted and never leaves the Vault.

The session is opened before the start goes upstream, so its declared size counts against
the user's storage quota at once: two starts racing for the last of a quota both see each
other. It is bound to the upstream upload when the start answers (`attach`), or ended at once
if the start fails (`finish`); until then its token opens nothing. A multipart upload holds
its space the same way while its body streams.

One chunk at a time: a chunk leases the session (`busy_until`) with a conditional update,
so two requests racing on one upload cannot both relay.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from vault.errors import BadRequest, Conflict, NotFound
from vault.models import ApiKey, UploadSession, User

TOKEN_BYTES = 32
LEASE = timedelta(minutes=15)


@dataclass(frozen=True)
class StartedUpload:
    """An upload session just opened: the token to put in the client's URL."""

    token: str
    session_id: int


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(session: Session, *, user_id: int, api_key_id: int, declared_bytes: int, mime_type: str,
                 now: datetime, lifetime_seconds: float) -> StartedUpload:
    """Record a new upload, not yet bound to an upstream one (committed), and return its client token."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    row = UploadSession(token_hash=token_hash(token), user_id=user_id, api_key_id=api_key_id,
                        upstream_url_encrypted="", declared_bytes=declared_bytes, mime_type=mime_type[:255],
                        created_at=now, expires_at=now + timedelta(seconds=lifetime_seconds))
    session.add(row)
    session.commit()
    return StartedUpload(token, row.id)


def attach(session: Session, row_id: int, upstream_key_id: int, upstream_url_encrypted: str) -> None:
    """Bind an opened upload to the upstream upload its start made (committed): from now on its token works."""
    session.execute(update(UploadSession).where(UploadSession.id == row_id)
                    .values(upstream_key_id=upstream_key_id, upstream_url_encrypted=upstream_url_encrypted))
    session.commit()


def finish(session: Session, row_id: int, now: datetime) -> None:
    """End an upload that is over (a multipart one) or never started upstream, giving back the space its
    declared size held (committed); its token opens nothing from now on."""
    release(session, row_id, None, now)


def claim(session: Session, token: str, now: datetime) -> UploadSession:
    """The live upload `token` opens, leased to this request (committed); `NotFound` / `Conflict`.

    Unknown, expired, finished, revoked-key and inactive-user tokens are all "not found".
    """
    if not token or len(token) > 128:
        raise NotFound("This upload session does not exist or has ended.")
    row = session.scalar(select(UploadSession).where(UploadSession.token_hash == token_hash(token)))
    if row is None or row.finished_at is not None or row.expires_at <= now or not row.upstream_url_encrypted \
            or not caller_still_allowed(session, row):
        session.rollback()
        raise NotFound("This upload session does not exist or has ended.")
    leased = session.execute(
        update(UploadSession).where(UploadSession.id == row.id, UploadSession.finished_at.is_(None),
                                    or_(UploadSession.busy_until.is_(None), UploadSession.busy_until <= now))
        .values(busy_until=now + LEASE)).rowcount
    session.commit()
    if not leased:
        raise Conflict("Another request is sending to this upload right now; send chunks one at a time.")
    return row


def caller_still_allowed(session: Session, row: UploadSession) -> bool:
    """The Vault key that started the upload is not revoked and its user is active."""
    found = session.execute(select(ApiKey.revoked_at, User.is_active).join(User, User.id == ApiKey.user_id)
                            .where(ApiKey.id == row.api_key_id)).first()
    return found is not None and found.revoked_at is None and bool(found.is_active)


def release(session: Session, row_id: int, received_bytes: int | None, finished_at: datetime | None) -> None:
    """End a chunk's lease, noting the bytes the upstream now holds and whether the upload ended (committed)."""
    values: dict = {"busy_until": None}
    if received_bytes is not None:
        values["received_bytes"] = received_bytes
    if finished_at is not None:
        values["finished_at"] = finished_at
    session.execute(update(UploadSession).where(UploadSession.id == row_id).values(**values))
    session.commit()


def check_chunk(row: UploadSession, offset: int, length: int, max_upload: int) -> None:
    """A chunk fits: it starts where the upload stands and stays within the declared size."""
    if offset != row.received_bytes:
        raise BadRequest(f"The upload offset must be {row.received_bytes}, the bytes received so far.")
    if offset + length > row.declared_bytes or offset + length > max_upload:
        raise BadRequest("The upload is longer than the size declared when it started.")
