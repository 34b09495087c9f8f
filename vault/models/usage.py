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
    and `hold_nano` what was reserved before forwarding.

    `settlement_id` is made by the server for each request (never taken from the client)
    and is the ledger key: its uniqueness makes a second settlement of the same request
    impossible. `client_request_id` is the traced `X-Request-Id` (the caller's if it looked
    sane), kept for correlation only. `usage_source` says whether the tokens are the ones
    the upstream `reported` or `estimated` by the Vault (no usage reported, or an abandoned
    request settled by the sweeper), or `storage` for a cached content's storage charge.
    """

    __tablename__ = "usage_records"
    __table_args__ = (Index("ix_usage_records_user_started", "user_id", "started_at"),
                      Index("ix_usage_records_key_finished", "api_key_id", "finished_at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    settlement_id: Mapped[str] = mapped_column(String(32), unique=True)
    client_request_id: Mapped[str | None] = mapped_column(String(64), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"), index=True)
    upstream_key_id: Mapped[int | None] = mapped_column(ForeignKey("upstream_keys.id", ondelete="SET NULL"))
    endpoint: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(128), index=True)
    priced_model: Mapped[str] = mapped_column(String(128), default="", server_default="")
    status: Mapped[int] = mapped_column(index=True)
    streamed: Mapped[bool] = mapped_column(default=False)
    ending: Mapped[str] = mapped_column(String(32))
    usage_source: Mapped[str] = mapped_column(String(16), default="reported", server_default="reported")
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
    image_count: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    fallback_from: Mapped[str | None] = mapped_column(String(128))  # the model asked for, when a fallback served

    def __repr__(self) -> str:
        return f"<UsageRecord {self.settlement_id} {self.model} {self.status} {self.cost_nano}n$>"


class PendingHold(db.Model):
    """Money reserved for a request that has not been settled yet.

    Written in the same transaction as the hold is taken from the balance, deleted in the
    same transaction as the usage record is written, so every open hold is on record. A hold
    still here after `expires_at` belongs to a request whose worker died or whose settlement
    kept failing: the sweeper settles it as `abandoned`, charging `estimate_nano` (at most
    `amount_nano`).

    `cap_period` is the spend-cap period of the Vault key the hold counts against (None: the
    key has no cap), `tokens` the tokens the request may use at most, counted against the
    key's tokens-per-minute limit while it is in flight.
    """

    __tablename__ = "pending_holds"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    settlement_id: Mapped[str] = mapped_column(String(32), unique=True)
    client_request_id: Mapped[str | None] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"), index=True)
    endpoint: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(128), default="", server_default="")
    amount_nano: Mapped[int] = mapped_column(BigInteger)
    estimate_nano: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    cap_period: Mapped[str | None] = mapped_column(String(16))
    tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))

    def __repr__(self) -> str:
        return f"<PendingHold {self.settlement_id} user {self.user_id} {self.amount_nano}n$>"


class BalanceAdjustment(db.Model):
    """A change of balance that is not a request's cost: signup credit or an admin's hand.

    `amount_nano` is the change applied (positive or negative); `kind` is `signup`, `add`,
    `set` or `redeem` (a redemption code, see `vault.billing.redemption`); `admin_id` is who
    did it (None for signup credit and redemptions).
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
    Audio prompt tokens pay `audio_input_nano` (cached: `audio_cached_nano`); empty means the
    text price. Above the tier, audio pays the higher tier's input prices (no model Google
    lists has both a tier and an audio price). `grounding_fee_nano` is charged per request
    grounded with Google Search (`grounding_unit` = `prompt`) or per search query the model
    ran (`query`, as Gemini 3 is billed); empty means no fee. `image_nano` is the price of
    one generated image (image models, `/v1/images/generations`).
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
    audio_input_nano: Mapped[int | None] = mapped_column(BigInteger)
    audio_cached_nano: Mapped[int | None] = mapped_column(BigInteger)
    grounding_fee_nano: Mapped[int | None] = mapped_column(BigInteger)
    grounding_unit: Mapped[str] = mapped_column(String(8), default="prompt", server_default="prompt")
    image_nano: Mapped[int | None] = mapped_column(BigInteger)  # per generated image (Imagen)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow,
                                                 server_default=func.now())


class KeySpend(db.Model):
    """What a Vault key with a spend cap has settled in one cap period (`day:2026-11-27`,
    `week:2026-W48`, `month:2026-11` or `life`); open holds of the period count on top."""

    __tablename__ = "key_spend"

    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True)
    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    spent_nano: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
