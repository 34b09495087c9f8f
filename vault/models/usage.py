"""The ledger: one usage record per proxied request, and every admin change of a balance."""

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from vault.clock import utcnow
from vault.extensions import db
from vault.models.types import UTCDateTime

# SQLite only auto-increments INTEGER primary keys; PostgreSQL gets a 64-bit id.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UsageRecord(db.Model):
    """What one client request used and cost, whatever happened to it.

    Token classes follow Gemini: `prompt_tokens` includes `cached_tokens`; `output_tokens`
    is candidates plus thoughts; `tool_prompt_tokens` is input-side. Prices are the ones
    charged (nano-USD per 1M tokens, after tiering); `cost_nano` is what the balance paid
    and `hold_nano` what was reserved before forwarding. `request_id` makes settlement
    idempotent.
    """

    __tablename__ = "usage_records"
    __table_args__ = (Index("ix_usage_records_user_started", "user_id", "started_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    request_id: Mapped[str] = mapped_column(String(32), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"), index=True)
    upstream_key_id: Mapped[int | None] = mapped_column(ForeignKey("upstream_keys.id", ondelete="SET NULL"))
    endpoint: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(128), index=True)
    priced_model: Mapped[str] = mapped_column(String(128), default="", server_default="")
    status: Mapped[int] = mapped_column(index=True)
    streamed: Mapped[bool] = mapped_column(default=False)
    ending: Mapped[str] = mapped_column(String(32))
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    cached_tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    tool_prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    candidates_tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    thoughts_tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    total_tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    price_input_nano: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    price_output_nano: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    price_cached_nano: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    cost_nano: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    hold_nano: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    first_byte_ms: Mapped[int | None] = mapped_column()
    total_ms: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(String(255))

    def __repr__(self) -> str:
        return f"<UsageRecord {self.request_id} {self.model} {self.status} {self.cost_nano}n$>"


class BalanceAdjustment(db.Model):
    """A change of balance that is not a request's cost: signup credit or an admin's hand.

    `amount_nano` is the change applied (positive or negative); `kind` is `signup`, `add`
    or `set`; `admin_id` is who did it (None for signup credit).
    """

    __tablename__ = "balance_adjustments"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    admin_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16))
    amount_nano: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(255), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ModelPrice(db.Model):
    """USD prices of one model in nano-USD per 1M tokens, with an optional higher tier.

    When a request's prompt exceeds `tier_threshold` tokens, the `*_above_nano` prices apply
    to the whole request, as Gemini's Pro models are priced above 200k tokens.
    """

    __tablename__ = "model_prices"

    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    input_nano: Mapped[int] = mapped_column(BigInteger)
    output_nano: Mapped[int] = mapped_column(BigInteger)
    cached_nano: Mapped[int] = mapped_column(BigInteger)
    tier_threshold: Mapped[int | None] = mapped_column(BigInteger)
    input_above_nano: Mapped[int | None] = mapped_column(BigInteger)
    output_above_nano: Mapped[int | None] = mapped_column(BigInteger)
    cached_above_nano: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow,
                                                 server_default=func.now())
