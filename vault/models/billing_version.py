"""Version stamps: a counter per cached table, bumped in the same transaction as every change.

Each worker caches the price book; reading the stamp with the request's authentication query
(no extra round trip) tells it that its copy is stale, so a change applies to the next
request on every worker, not after a refresh interval.
"""

from sqlalchemy import BigInteger, String, event, insert, text
from sqlalchemy.orm import Mapped, mapped_column

from vault.extensions import db

PRICES = "prices"


class BillingVersion(db.Model):
    """The version of one cached table (`prices`: model prices and token limits)."""

    __tablename__ = "billing_versions"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))


@event.listens_for(BillingVersion.__table__, "after_create")
def _first_row(table, connection, **_kw) -> None:
    """A table made by `create_all` (tests, first start) starts with its row, as the migration does."""
    connection.execute(insert(table).values(name=PRICES, version=1))
