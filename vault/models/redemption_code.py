"""A redemption code: a top-up a user claims once, minted by an admin."""

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from vault.clock import utcnow
from vault.extensions import db
from vault.models.types import UTCDateTime


class RedemptionCode(db.Model):
    """A code worth `amount_nano`. Only its SHA-256 hash is stored, plus a short visible prefix.

    Claimed by one conditional UPDATE (`redeemed_at` still empty, not expired), so it pays out
    once however many requests race for it; the credit lands in the ledger as a
    `BalanceAdjustment` of kind `redeem`.
    """

    __tablename__ = "redemption_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    amount_nano: Mapped[int] = mapped_column(BigInteger)
    note: Mapped[str] = mapped_column(String(255), default="", server_default="")
    batch: Mapped[str] = mapped_column(String(32), index=True)  # the codes minted together
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    redeemed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def state(self, now: datetime) -> str:
        """`redeemed`, `expired` or `unused` at `now`."""
        if self.redeemed_at is not None:
            return "redeemed"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "unused"
