"""Background jobs an admin starts (checking many pool keys) and polls."""

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from vault.clock import utcnow
from vault.extensions import db
from vault.models.types import UTCDateTime


class Job(db.Model):
    """A job's progress, kept in the database so it survives a page reload or a restart:
    `state` is queued, running, done or failed; `done` of `total` items; `results` per item."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="queued", server_default="queued")
    done: Mapped[int] = mapped_column(default=0, server_default="0")
    total: Mapped[int] = mapped_column(default=0, server_default="0")
    params: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))
    results: Mapped[list | None] = mapped_column(JSON(none_as_null=True))
    error: Mapped[str | None] = mapped_column(String(255))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A job that runs alone (one check of the pool at a time) holds its kind here while queued or running,
    # NULL once it ends: the unique constraint refuses a second one even when two requests start one at once.
    active_kind: Mapped[str | None] = mapped_column(String(32), unique=True)


class FormSubmission(db.Model):
    """A form token already used: the same submission sent twice does its work once."""

    __tablename__ = "form_submissions"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
