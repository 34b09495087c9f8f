"""What the admin pages, the admin API and the dashboard say about users' files and cached contents.

A resource is usable only through the upstream key that holds it, so its state is read from
its own record (deleted, expired) and then from that key (disabled: 409 until re-enabled;
deleted: gone for good). Plain code over a session: no request, no app.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from vault.clock import isoformat
from vault.models import ApiKey, StoredResource, UpstreamKey, UpstreamKeyState, User
from vault.models.stored_resource import CACHE
from vault.resources import registry

LIVE, EXPIRED, DELETED, KEY_DISABLED, KEY_REMOVED = "live", "expired", "deleted", "key_disabled", "key_removed"
STATES = (LIVE, EXPIRED, DELETED, KEY_DISABLED, KEY_REMOVED)
SAMPLE_SIZE = 10  # names listed per upstream key in the pool page's warnings
UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_size(size: int) -> str:
    """Bytes in binary units, one decimal above a KiB: `512 B`, `1.5 MiB`, `20.0 GiB`."""
    value, unit = float(size), 0
    while value >= 1024 and unit < len(UNITS) - 1:
        value, unit = value / 1024, unit + 1
    return f"{size} B" if unit == 0 else f"{value:.1f} {UNITS[unit]}"


def state_of(row: StoredResource, key: UpstreamKey | None, now: datetime) -> str:
    """One of `STATES`: the record's own end first, then what its upstream key allows."""
    if row.deleted_at is not None:
        return DELETED
    if row.expires_at is not None and row.expires_at <= now:
        return EXPIRED
    if key is None or key.state == UpstreamKeyState.DELETED:
        return KEY_REMOVED
    if key.state == UpstreamKeyState.DISABLED:
        return KEY_DISABLED
    return LIVE


@dataclass(frozen=True)
class ResourceLine:
    """One resource with what the admin sees of it: its state, the key holding it, the key that made it."""

    resource: StoredResource
    state: str
    upstream_key: UpstreamKey | None
    api_key: ApiKey | None

    @property
    def size_text(self) -> str:
        """The size, human readable."""
        return human_size(self.resource.size_bytes)

    @property
    def is_cache(self) -> bool:
        """True for a cached content (they have tokens, files have bytes)."""
        return self.resource.kind == CACHE


@dataclass(frozen=True)
class Storage:
    """A user's storage used (live files and unfinished uploads) against their quota."""

    used: int
    quota: int

    @property
    def percent(self) -> float:
        """Used as a share of the quota, 0-100 (100 when the quota is 0 and anything is used)."""
        if self.quota <= 0:
            return 100.0 if self.used else 0.0
        return min(100.0, 100.0 * self.used / self.quota)

    @property
    def text(self) -> str:
        """`1.5 MiB of 20.0 GiB`."""
        return f"{human_size(self.used)} of {human_size(self.quota)}"


@dataclass(frozen=True)
class UserResources:
    """Every resource record of a user, newest first, and their storage."""

    lines: list[ResourceLine]
    storage: Storage


def by_id(session: Session, model: type, ids: set[int | None]) -> dict[int, Any]:
    """Rows of `model` with these ids (None ignored), in one query."""
    wanted = {value for value in ids if value is not None}
    if not wanted:
        return {}
    return {row.id: row for row in session.scalars(select(model).where(model.id.in_(wanted)))}


def user_resources(session: Session, user_id: int, quota: int, now: datetime) -> UserResources:
    """A user's files and caches with their states, and their storage used against `quota`."""
    rows = registry.resources_of(session, user_id)
    upstream = by_id(session, UpstreamKey, {row.upstream_key_id for row in rows})
    vault_keys = by_id(session, ApiKey, {row.api_key_id for row in rows})
    lines = []
    for row in rows:
        key = upstream.get(row.upstream_key_id)
        lines.append(ResourceLine(row, state_of(row, key, now), key, vault_keys.get(row.api_key_id)))
    return UserResources(lines, Storage(registry.storage_used(session, user_id, now), quota))


def resource_json(line: ResourceLine) -> dict[str, Any]:
    """A resource for the admin API: sizes in bytes, times in ISO 8601, never a key's secret."""
    row, key, vault_key = line.resource, line.upstream_key, line.api_key
    return {
        "id": row.id, "kind": row.kind, "name": row.name, "display_name": row.display_name,
        "mime_type": row.mime_type, "model": row.model, "size_bytes": row.size_bytes, "token_count": row.token_count,
        "upstream_key_id": row.upstream_key_id, "upstream_key": key.masked if key else None,
        "upstream_key_label": key.label if key else None,
        "api_key_id": row.api_key_id, "api_key_prefix": vault_key.prefix if vault_key else None,
        "created_at": isoformat(row.created_at), "expires_at": isoformat(row.expires_at),
        "deleted_at": isoformat(row.deleted_at), "state": line.state,
    }


def user_resources_json(report: UserResources) -> dict[str, Any]:
    """A user's resources and storage for the admin API."""
    return {"storage": {"used_bytes": report.storage.used, "quota_bytes": report.storage.quota},
            "resources": [resource_json(line) for line in report.lines]}


def live_clause(now: datetime) -> ColumnElement[bool]:
    """SQL: the resource is neither deleted nor expired (the same test as `StoredResource.live`)."""
    return (StoredResource.deleted_at.is_(None)
            & (StoredResource.expires_at.is_(None) | (StoredResource.expires_at > now)))


def held_counts(session: Session, now: datetime) -> dict[int, int]:
    """How many live resources each upstream key holds, by key id (keys holding none are absent)."""
    query = (select(StoredResource.upstream_key_id, func.count())
             .where(StoredResource.upstream_key_id.is_not(None), live_clause(now))
             .group_by(StoredResource.upstream_key_id))
    return {key_id: count for key_id, count in session.execute(query)}


@dataclass
class Holdings:
    """What an upstream key holds: how many live resources, and the first few with their owners' emails."""

    count: int = 0
    sample: list[tuple[str, str]] = field(default_factory=list)

    @property
    def listing(self) -> str:
        """`files/a (ada@example.com), cachedContents/b (bob@example.com) and 3 more`."""
        text = ", ".join(f"{name} ({email})" for name, email in self.sample)
        rest = self.count - len(self.sample)
        return f"{text} and {rest} more" if rest > 0 else text

    @property
    def disable_warning(self) -> str:
        """What disabling the key does to what it holds ('' if nothing)."""
        if not self.count:
            return ""
        return (f"{self.count} file(s) and cached content(s) it holds answer 409 until it is enabled again: "
                f"{self.listing}.")

    @property
    def delete_warning(self) -> str:
        """What deleting the key does to what it holds ('' if nothing)."""
        if not self.count:
            return ""
        return f"{self.count} file(s) and cached content(s) it holds become unreachable for good: {self.listing}."


def holdings(session: Session, now: datetime, limit: int = SAMPLE_SIZE) -> dict[int, Holdings]:
    """Every upstream key holding live resources: their count and the first `limit` (name, owner email)."""
    return {key_id: Holdings(count, sample_of(session, key_id, now, limit))
            for key_id, count in held_counts(session, now).items()}


def held_by(session: Session, upstream_key_id: int, now: datetime, limit: int = SAMPLE_SIZE) -> Holdings:
    """What one upstream key holds (see `holdings`)."""
    count = session.scalar(select(func.count()).select_from(StoredResource).where(
        StoredResource.upstream_key_id == upstream_key_id, live_clause(now)))
    return Holdings(count or 0, sample_of(session, upstream_key_id, now, limit) if count else [])


def sample_of(session: Session, upstream_key_id: int, now: datetime, limit: int) -> list[tuple[str, str]]:
    """The first `limit` live resources of an upstream key, as (name, owner email)."""
    query = (select(StoredResource.name, User.email).join(User, User.id == StoredResource.user_id)
             .where(StoredResource.upstream_key_id == upstream_key_id, live_clause(now))
             .order_by(StoredResource.id).limit(limit))
    return [(name, email) for name, email in session.execute(query)]


def made_with_keys(session: Session, user_id: int, now: datetime) -> dict[int | None, int]:
    """A user's live resources counted by the Vault key that made them (None: a key since deleted)."""
    query = (select(StoredResource.api_key_id, func.count())
             .where(StoredResource.user_id == user_id, live_clause(now)).group_by(StoredResource.api_key_id))
    return {key_id: count for key_id, count in session.execute(query)}


def revoke_note(made: int, owned: int, others_active: bool) -> str:
    """What revoking a Vault key does to the user's files and caches ('' when nothing).

    :param made: live resources made with this key
    :param owned: live resources of the user in all
    :param others_active: whether the user keeps another active key
    """
    if not others_active and owned:
        return (f"It is your only active key: your {owned} file(s) and cached content(s) cannot be used "
                "until you create another key.")
    if made:
        return f"The {made} file(s) and cached content(s) made with it stay usable with your other keys."
    return ""


def revoke_notes(session: Session, user_id: int, keys: list[ApiKey], now: datetime) -> dict[int, str]:
    """The revoke note of each active key of a user (see `revoke_note`), by key id."""
    made = made_with_keys(session, user_id, now)
    owned, active = sum(made.values()), [key for key in keys if key.revoked_at is None]
    return {key.id: revoke_note(made.get(key.id, 0), owned, len(active) > 1) for key in active}
