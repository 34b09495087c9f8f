"""A rest period of one upstream key for one model, after the upstream said 429."""

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from vault.extensions import db
from vault.models.types import UTCDateTime


class UpstreamCooldown(db.Model):
    """Key `upstream_key_id` may not serve `model` before `until` (Gemini quotas are per model)."""

    __tablename__ = "upstream_cooldowns"

    upstream_key_id: Mapped[int] = mapped_column(
        ForeignKey("upstream_keys.id", ondelete="CASCADE"), primary_key=True
    )
    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    until: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(String(255), default="", server_default="")

    def __repr__(self) -> str:
        return f"<UpstreamCooldown {self.upstream_key_id} {self.model} until {self.until}>"
