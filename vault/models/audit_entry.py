"""The audit trail: every admin action, who did it, when, from where, and what it changed."""

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, event
from sqlalchemy.orm import Mapped, mapped_column

from vault.clock import utcnow
from vault.extensions import db
from vault.models.types import UTCDateTime

BigId = BigInteger().with_variant(Integer(), "sqlite")


class AuditEntry(db.Model):
    """One admin action. Written in the same transaction as the change it records; never
    changed or deleted afterwards (the ORM refuses to, and no route offers it)."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    actor_email: Mapped[str] = mapped_column(String(254), default="", server_default="")
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(128), default="", server_default="")
    before: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))
    after: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))
    ip: Mapped[str] = mapped_column(String(64), default="", server_default="")


@event.listens_for(AuditEntry, "before_update")
@event.listens_for(AuditEntry, "before_delete")
def refuse_changes(_mapper, _connection, entry: AuditEntry) -> None:
    raise PermissionError(f"audit entry {entry.id} is permanent")
