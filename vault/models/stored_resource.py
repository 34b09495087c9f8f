"""Files and cached contents a user made through the Vault, and the uploads still under way.

Google keeps both in the project of the key that made them: a later call naming one must go
out with that same upstream key, and nobody else's call may name it at all. The Vault
records each one it created, so ownership and key affinity are decided here, never upstream.
"""

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vault.clock import utcnow
from vault.extensions import db
from vault.models.types import UTCDateTime

FILE = "file"
CACHE = "cache"


class StoredResource(db.Model):
    """One upstream file (`files/…`) or cached content (`cachedContents/…`) and who owns it.

    `name` is Google's resource name, unique within the project of `upstream_key_id`; the
    owner is the user, and `api_key_id` the Vault key that made it (kept if revoked).
    `resource` is the last JSON Google sent for it (what listing shows). A row stays after
    deletion or expiry (`deleted_at`) so the admin pages can tell what a key held.
    `storage_charged_until` is how far a cache's storage has been charged.
    """

    __tablename__ = "stored_resources"
    __table_args__ = (
        UniqueConstraint("upstream_key_id", "name", name="uq_stored_resources_key_name"),
        Index("ix_stored_resources_owner", "user_id", "kind", "deleted_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(160), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))
    upstream_key_id: Mapped[int | None] = mapped_column(ForeignKey("upstream_keys.id", ondelete="SET NULL"))
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    token_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    mime_type: Mapped[str] = mapped_column(String(255), default="", server_default="")
    display_name: Mapped[str] = mapped_column(String(512), default="", server_default="")
    model: Mapped[str] = mapped_column(String(128), default="", server_default="")
    resource: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    storage_charged_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    owner = relationship("User")
    upstream_key = relationship("UpstreamKey")

    def live(self, now: datetime) -> bool:
        """Not deleted and not past its expiry."""
        return self.deleted_at is None and (self.expires_at is None or self.expires_at > now)

    def __repr__(self) -> str:
        return f"<StoredResource {self.kind} {self.name} user={self.user_id} key={self.upstream_key_id}>"


class UploadSession(db.Model):
    """A resumable upload the Vault relays: the credential its client URL carries, hashed.

    The upstream's own upload URL (which is a credential too) is kept encrypted and never
    leaves the Vault. `busy_until` is a lease: one chunk at a time per upload.
    """

    __tablename__ = "upload_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    upstream_key_id: Mapped[int | None] = mapped_column(ForeignKey("upstream_keys.id", ondelete="SET NULL"))
    upstream_url_encrypted: Mapped[str] = mapped_column(Text)
    declared_bytes: Mapped[int] = mapped_column(BigInteger)
    received_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    mime_type: Mapped[str] = mapped_column(String(255), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    busy_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"<UploadSession {self.id} user={self.user_id} {self.received_bytes}/{self.declared_bytes}>"
