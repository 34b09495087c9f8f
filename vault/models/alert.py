"""Alerts: what the Vault tells operators (low balances, a thinning pool), and where it sends them."""

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vault.clock import utcnow
from vault.extensions import db
from vault.models.types import UTCDateTime

BigId = BigInteger().with_variant(Integer(), "sqlite")


class AlertSettings(db.Model):
    """The one row of alert settings: the webhook (URL and HMAC secret, encrypted) and the
    pool threshold (fewer usable keys than `min_usable_keys` raises an alert; None: off)."""

    __tablename__ = "alert_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_url_encrypted: Mapped[str | None] = mapped_column(Text)
    webhook_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    min_usable_keys: Mapped[int | None] = mapped_column()
    email_to: Mapped[str | None] = mapped_column(String(254))
    pool_low_alerted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # until the pool recovers
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class AlertEvent(db.Model):
    """One alert raised, and how its delivery went (`pending`, `delivered`, `failed`; `none`
    when no webhook is set). `payload` is exactly what the webhook receives."""

    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)  # low_balance, pool_low, key_disabled
    payload: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    state: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending", index=True)
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status: Mapped[int | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(String(255))
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    email_state: Mapped[str | None] = mapped_column(String(16))
