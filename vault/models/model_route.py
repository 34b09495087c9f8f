"""Model routing an admin sets: aliases (virtual models) and per-model settings."""

from datetime import datetime

from sqlalchemy import JSON, String, false
from sqlalchemy.orm import Mapped, mapped_column

from vault.clock import utcnow
from vault.extensions import db
from vault.models.types import UTCDateTime


class ModelAlias(db.Model):
    """A model name callers may use for `target` (`fast` → `gemini-2.5-flash`).

    `defaults` (a native request fragment, e.g. `{"tools": [{"google_search": {}}]}`) makes
    it a virtual model: merged into every call's body, never over what the caller set.
    """

    __tablename__ = "model_aliases"

    alias: Mapped[str] = mapped_column(String(128), primary_key=True)
    target: Mapped[str] = mapped_column(String(128))
    defaults: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class ModelSetting(db.Model):
    """An admin's setting for one Gemini model: hidden from callers, and what serves it
    when every key is cooling for it (`fallback`, model ids tried in order; None: none)."""

    __tablename__ = "model_settings"

    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    hidden: Mapped[bool] = mapped_column(default=False, server_default=false())
    fallback: Mapped[list | None] = mapped_column(JSON(none_as_null=True))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
