"""A Vault key: what a client presents to the proxy instead of a real Gemini key."""

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vault.clock import utcnow
from vault.extensions import db
from vault.models.types import UTCDateTime


class ApiKey(db.Model):
    """A user's Vault key. Only its SHA-256 hash is stored, plus a short visible prefix.

    The usage counters move with every metered request (nano-USD for spend).

    The policy columns (all optional; None means "no limit of the key's own", the owner's
    ceilings in `User.limits` still apply) are read by `vault.policies`: an expiry, model
    globs, a spend cap per period (`day` / `week` / `month`, None: over the key's life),
    requests and tokens per minute, concurrent requests and client CIDRs.
    """

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="", server_default="")
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    request_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    total_tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    spend_nano: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    rate_limit_rpm: Mapped[int | None] = mapped_column()  # None: the global default applies
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    allowed_models: Mapped[list | None] = mapped_column(JSON(none_as_null=True))
    spend_cap_nano: Mapped[int | None] = mapped_column(BigInteger)
    spend_cap_period: Mapped[str | None] = mapped_column(String(8))
    rate_limit_tpm: Mapped[int | None] = mapped_column(BigInteger)
    max_concurrency: Mapped[int | None] = mapped_column()
    allowed_ips: Mapped[list | None] = mapped_column(JSON(none_as_null=True))

    owner = relationship("User", back_populates="api_keys")

    @property
    def is_revoked(self) -> bool:
        """True once the key has been revoked."""
        return self.revoked_at is not None

    def __repr__(self) -> str:
        return f"<ApiKey {self.id} {self.prefix}…>"
