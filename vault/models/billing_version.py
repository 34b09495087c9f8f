"""Version stamps: a counter per cached table, bumped in the same transaction as every change.

Workers cache the price book and the Vault keys they have checked. Every proxied call reads
both stamps inside the one statement it sends anyway (the hold, or the balance check of a
free call), so a change applies to the next request on every worker, with no extra round
trip and no refresh interval:

- `prices`: model prices and token limits (bumped by the code that writes them);
- `access`: who may call (bumped by the flush that revokes or rewrites a Vault key, changes
  its rate limit or owner, or deactivates or deletes a user; see `bump_on_access_change`).
"""

from sqlalchemy import BigInteger, String, event, insert, inspect, select, text, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from vault.extensions import db

PRICES = "prices"
ACCESS = "access"
# Attributes whose change makes a cached Vault key wrong, per model name.
ACCESS_ATTRIBUTES = {
    "ApiKey": ("revoked_at", "key_hash", "user_id", "expires_at", "allowed_models", "spend_cap_nano",
               "spend_cap_period", "rate_limit_rpm", "rate_limit_tpm", "max_concurrency", "allowed_ips"),
    "User": ("is_active", "limits"),
}


class BillingVersion(db.Model):
    """The version of one cached table (`prices` or `access`)."""

    __tablename__ = "billing_versions"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))


def stamp_of(name: str):
    """The current version of `name`, as a scalar subquery other statements can carry as a column."""
    versions = BillingVersion.__table__
    return select(versions.c.version).where(versions.c.name == name).scalar_subquery()


def bump(session: Session, name: str) -> None:
    """Mark `name` changed; runs in the same transaction as the change itself."""
    versions = BillingVersion.__table__
    bumped = session.execute(
        update(versions).where(versions.c.name == name).values(version=versions.c.version + 1)
    ).rowcount
    if not bumped:
        session.execute(insert(versions).values(name=name, version=1))


@event.listens_for(BillingVersion.__table__, "after_create")
def _first_rows(table, connection, **_kw) -> None:
    """A table made by `create_all` (tests, first start) starts with its rows, as the migrations do."""
    connection.execute(insert(table), [{"name": PRICES, "version": 1}, {"name": ACCESS, "version": 1}])


@event.listens_for(Session, "before_flush")
def bump_on_access_change(session: Session, _context, _instances) -> None:
    """Bump `access` in the flush that changes who may call, whichever code made the change."""
    if any(_changes_access(obj, deleted=False) for obj in session.dirty) or any(
            _changes_access(obj, deleted=True) for obj in session.deleted):
        bump(session, ACCESS)


def _changes_access(obj, deleted: bool) -> bool:
    watched = ACCESS_ATTRIBUTES.get(type(obj).__name__)
    if watched is None:
        return False
    if deleted:
        return True
    state = inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in watched)
