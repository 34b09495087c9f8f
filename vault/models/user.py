"""A person with an account: credentials, role, balance and lifetime usage totals."""

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import JSON, BigInteger, String, false, text, true
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from vault.clock import utcnow
from vault.extensions import db
from vault.models.types import UTCDateTime


class User(UserMixin, db.Model):
    """An account. Emails are stored lower-cased, so uniqueness is case-insensitive.

    `session_version` is part of every session id and JWT; bumping it ends them all.
    Money is in nano-USD (see `vault.billing.money`).
    `limits` is what an admin allows the user's keys (`vault.policies.UserLimits`): ceilings
    and defaults for every key policy, plus the models the user may see at all.
    """

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())
    is_admin: Mapped[bool] = mapped_column(default=False, server_default=false())
    balance_nano: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    session_version: Mapped[int] = mapped_column(default=1, server_default=text("1"))
    request_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    total_tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    spend_nano: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    limits: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))
    low_balance_threshold_nano: Mapped[int | None] = mapped_column(BigInteger)  # alert below this
    low_balance_alerted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # until topped up again

    api_keys = relationship("ApiKey", back_populates="owner", cascade="all, delete-orphan")

    @validates("email")
    def normalize_email(self, _key: str, value: str) -> str:
        """Store emails trimmed and lower-cased."""
        return value.strip().lower()

    def get_id(self) -> str:
        """Flask-Login's session id: the user id and the session version."""
        return f"{self.id}:{self.session_version}"

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email}>"
