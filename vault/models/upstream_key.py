"""A real Gemini API key in the pool, encrypted at rest, with its health counters."""

import enum
from datetime import datetime

from sqlalchemy import BigInteger, Enum, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vault.clock import utcnow
from vault.extensions import db
from vault.models.types import UTCDateTime


class UpstreamKeyState(enum.StrEnum):
    """Whether the rotator may hand the key out at all (cooldowns are tracked per model).

    `deleted` is an admin's removal: the row stays so usage records keep pointing at it and
    requests still in flight on it settle, but the key is out of the pool for good.
    """

    ACTIVE = "active"
    DISABLED = "disabled"
    DELETED = "deleted"


class UpstreamKey(db.Model):
    """One pooled Gemini key.

    `secret_encrypted` is a Fernet token of the key; `fingerprint` is a keyed hash used to
    refuse duplicates without decrypting; `masked` is the only form ever displayed.
    `proxy_url_encrypted`, when set, is a Fernet token of the proxy every call with this key
    goes through (it may hold a password; `vault.pool.egress` masks it for display).
    A disabled key with `disabled_until` set comes back by itself; without it, an admin
    must re-enable it. A deleted key (`deleted_at` set) has its secret wiped and is hidden
    everywhere; adding the same key again revives the row (the fingerprint still matches).
    """

    __tablename__ = "upstream_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(100), default="", server_default="")
    secret_encrypted: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    masked: Mapped[str] = mapped_column(String(32))
    proxy_url_encrypted: Mapped[str | None] = mapped_column(Text)
    state: Mapped[UpstreamKeyState] = mapped_column(
        Enum(UpstreamKeyState, native_enum=False, length=16,
             values_callable=lambda states: [state.value for state in states]),
        default=UpstreamKeyState.ACTIVE,
        server_default=UpstreamKeyState.ACTIVE.value,
    )
    disabled_reason: Mapped[str | None] = mapped_column(String(255))
    disabled_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    consecutive_failures: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(String(500))
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    request_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    failure_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    cooldowns = relationship("UpstreamCooldown", cascade="all, delete-orphan", passive_deletes=True,
                             order_by="UpstreamCooldown.model")

    def __repr__(self) -> str:
        return f"<UpstreamKey {self.id} {self.masked} {self.state.value}>"
