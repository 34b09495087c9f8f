"""The proxy's door: find the Vault key however the client sent it, and check it once."""

from dataclasses import dataclass

from flask import Request
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from vault.billing.prices import PRICE_VERSION
from vault.errors import Forbidden, Unauthorized
from vault.models import ApiKey, User
from vault.security import hash_vault_key

# Built once: on the hot path a prepared statement skips SQLAlchemy's expression building.
# The price version rides along, so a worker learns of a price edit without another round trip.
api_keys, users = ApiKey.__table__, User.__table__
KEY_LOOKUP = (
    select(api_keys.c.id, api_keys.c.revoked_at, users.c.id, users.c.is_active, api_keys.c.rate_limit_rpm,
           PRICE_VERSION.label("price_version"))
    .join(users, api_keys.c.user_id == users.c.id)
    .where(api_keys.c.key_hash == bindparam("key_hash"))
)


@dataclass(frozen=True)
class Caller:
    """Who is calling the proxy: the key's and its owner's ids (plain values, safe in a stream),
    and the price version current when the key was checked."""

    api_key_id: int
    user_id: int
    rate_limit_rpm: int | None = None
    price_version: int | None = None


def presented_vault_key(request: Request) -> str | None:
    """The Vault key from `x-goog-api-key`, `?key=` or `Authorization: Bearer`, in that order."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    bearer = token.strip() if scheme.lower() == "bearer" else ""
    for candidate in (request.headers.get("x-goog-api-key", ""), request.args.get("key", ""), bearer):
        if candidate.strip():
            return candidate.strip()
    return None


def bearer_caller(request: Request) -> bool:
    """The openai SDK authenticates with Bearer; google-genai and curl with a Google-style key."""
    return request.headers.get("Authorization", "").lower().startswith("bearer ") and not (
        request.headers.get("x-goog-api-key") or request.args.get("key")
    )


def authenticate(session: Session, plaintext: str | None) -> Caller:
    """The caller owning `plaintext`; 401 if missing, unknown or revoked, 403 if deactivated."""
    if not plaintext:
        raise Unauthorized("Missing Vault key: send 'Authorization: Bearer <key>' or 'x-goog-api-key: <key>'.")
    row = session.execute(KEY_LOOKUP, {"key_hash": hash_vault_key(plaintext)}).first()
    if row is None or row[1] is not None:
        raise Unauthorized("Invalid or revoked Vault key.")
    if not row[3]:
        raise Forbidden("This account is deactivated.")
    return Caller(api_key_id=row[0], user_id=row[2], rate_limit_rpm=row[4], price_version=row[5])
