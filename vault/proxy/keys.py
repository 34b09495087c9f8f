"""The proxy's door: find the Vault key however the client sent it, and check it once."""

from dataclasses import dataclass

from flask import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.errors import Forbidden, Unauthorized
from vault.models import ApiKey, User
from vault.security import hash_vault_key


@dataclass(frozen=True)
class Caller:
    """Who is calling the proxy: the key's and its owner's ids (plain values, safe in a stream)."""

    api_key_id: int
    user_id: int


def presented_vault_key(request: Request) -> str | None:
    """The Vault key from `x-goog-api-key`, `?key=` or `Authorization: Bearer`, in that order."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    bearer = token.strip() if scheme.lower() == "bearer" else ""
    for candidate in (request.headers.get("x-goog-api-key", ""), request.args.get("key", ""), bearer):
        if candidate.strip():
            return candidate.strip()
    return None


def authenticate(session: Session, plaintext: str | None) -> Caller:
    """The caller owning `plaintext`; 401 if missing, unknown or revoked, 403 if deactivated."""
    if not plaintext:
        raise Unauthorized("Missing Vault key: send 'Authorization: Bearer <key>' or 'x-goog-api-key: <key>'.")
    row = session.execute(
        select(ApiKey.id, ApiKey.revoked_at, User.id, User.is_active)
        .join(User, ApiKey.user_id == User.id)
        .where(ApiKey.key_hash == hash_vault_key(plaintext))
    ).first()
    if row is None or row[1] is not None:
        raise Unauthorized("Invalid or revoked Vault key.")
    if not row[3]:
        raise Forbidden("This account is deactivated.")
    return Caller(api_key_id=row[0], user_id=row[2])
