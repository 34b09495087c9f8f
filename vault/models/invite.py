"""An invite: a single-use code an admin hands out so someone can sign up."""

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vault.clock import utcnow
from vault.extensions import db
from vault.models.types import UTCDateTime


class Invite(db.Model):
    """A sign-up code. Only its SHA-256 hash is stored, plus a short visible prefix.

    Unused while `used_at` is empty and `expires_at` (if set) is ahead; redeeming it sets
    `used_by` and `used_at` in one conditional UPDATE, so it can be used once only.
    """

    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(String(255), default="", server_default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    used_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    creator = relationship("User", foreign_keys=[created_by])
    redeemer = relationship("User", foreign_keys=[used_by])

    def state(self, now: datetime) -> str:
        """`used`, `expired` or `unused` at `now`."""
        if self.used_at is not None:
            return "used"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "unused"

    def __repr__(self) -> str:
        return f"<Invite {self.id} {self.prefix}…>"
