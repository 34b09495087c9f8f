"""A Gemini model's token limits, as Google's `models.list` reports them."""

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from vault.clock import utcnow
from vault.extensions import db
from vault.models.types import UTCDateTime


class GeminiModel(db.Model):
    """How many tokens a model takes in and gives out at most (`inputTokenLimit`, `outputTokenLimit`).

    `source` says where the numbers came from: `catalog` (the table in code,
    `vault.billing.catalog`) or `upstream` (`flask billing refresh-models`).
    """

    __tablename__ = "gemini_models"

    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    input_token_limit: Mapped[int] = mapped_column(Integer)
    output_token_limit: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16), default="catalog", server_default="catalog")
    refreshed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
