"""The Vault's record of every file and cached content its users made, and who may use each.

A user sees only their own resources: anything else -- another user's, a deleted or expired
one, one the Vault never made -- is "not found", the same answer as a name that never
existed, so names cannot be probed. A call naming resources goes out with the upstream key
that holds them; resources of two keys cannot be used together.
"""

import base64
import binascii
import re
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vault.errors import BadRequest, NotFound, ResourceUnavailable
from vault.models import StoredResource, UploadSession, UpstreamKey, UpstreamKeyState
from vault.models.stored_resource import CACHE, FILE
from vault.resources.references import References

KINDS = {"files": FILE, "cachedContents": CACHE}
COUNT = re.compile(r"[0-9]{1,15}")  # ASCII digits only (`str.isdigit` takes '²'), and within a BIGINT
LAST_YEAR = 3000  # a later time is no expiry Google meant; refusing it keeps every datetime in range
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 10


def kind_of(name: str) -> str:
    """`file` or `cache` for a resource name."""
    return CACHE if name.startswith("cachedContents/") else FILE


def not_found(name: str) -> NotFound:
    """The one answer for a resource the caller may not use, whatever the reason."""
    label = "CachedContent" if kind_of(name) == CACHE else "File"
    return NotFound(f"{label} {name} was not found.")


def owned(session: Session, user_id: int, names: list[str], now: datetime) -> dict[str, StoredResource]:
    """The caller's live resources among `names`, by name."""
    if not names:
        return {}
    rows = session.scalars(select(StoredResource).where(
        StoredResource.user_id == user_id, StoredResource.name.in_(names), StoredResource.deleted_at.is_(None)))
    return {row.name: row for row in rows if row.live(now)}


def find(session: Session, user_id: int, name: str, now: datetime) -> StoredResource:
    """The caller's live resource `name`; `NotFound` otherwise."""
    row = owned(session, user_id, [name], now).get(name)
    if row is None:
        raise not_found(name)
    return row


def holding_key(session: Session, user_id: int, refs: References, now: datetime) -> int:
    """The upstream key every resource in `refs` lives in, checked: all the caller's, all live, one key.

    `NotFound` for any the caller does not own, `BadRequest` if they live in two keys,
    `ResourceUnavailable` if their key has left the pool.
    """
    rows = owned(session, user_id, refs.names, now)
    missing = next((name for name in refs.names if name not in rows), None)
    if missing is not None:
        raise not_found(missing)
    keys = {row.upstream_key_id for row in rows.values()}
    if len(keys) > 1:
        raise BadRequest("This request names files or cached contents held by different upstream projects; "
                         "they cannot be used in one call. Upload them again together, or use them separately.")
    key_id = keys.pop()
    usable_key(session, key_id, refs.names[0])
    return key_id


def usable_key(session: Session, key_id: int | None, name: str) -> int:
    """`key_id` unless the key holding `name` was removed from the pool (`ResourceUnavailable`)."""
    state = None if key_id is None else session.scalar(select(UpstreamKey.state).where(UpstreamKey.id == key_id))
    if state is None or state == UpstreamKeyState.DELETED:
        raise ResourceUnavailable(f"{name} was held by an upstream key that has been removed from the pool; "
                                  "it can no longer be used.")
    return key_id


def unavailable_message(name: str) -> str:
    """The 409 text for a resource whose key an admin disabled."""
    return (f"The upstream key holding {name} is disabled; {name} cannot be used until an admin "
            "re-enables that key.")


def record(session: Session, kind: str, resource: dict, user_id: int, api_key_id: int | None,
           upstream_key_id: int, now: datetime) -> StoredResource:
    """Remember a resource the upstream just made for this user (not committed).

    Google names resources per project; should it hand out a name again (the old one
    deleted), the old record is taken over rather than colliding with it.
    """
    name = str(resource["name"])[:160]
    row = session.scalar(select(StoredResource).where(StoredResource.upstream_key_id == upstream_key_id,
                                                      StoredResource.name == name))
    if row is None:
        row = StoredResource(kind=kind, name=name, upstream_key_id=upstream_key_id)
        session.add(row)
    row.user_id, row.api_key_id, row.created_at, row.deleted_at = user_id, api_key_id, now, None
    row.token_count, row.size_bytes, row.expires_at, row.storage_charged_until = 0, 0, None, None
    refresh(row, resource)
    return row


def refresh(row: StoredResource, resource: dict) -> None:
    """Copy what the upstream says of the resource into its record."""
    row.resource = resource
    row.mime_type = str(resource.get("mimeType") or row.mime_type or "")[:255]
    row.display_name = str(resource.get("displayName") or row.display_name or "")[:512]
    row.model = str(resource.get("model") or row.model or "")[:128]
    size = resource.get("sizeBytes")
    if isinstance(size, (int, str)) and COUNT.fullmatch(str(size)):
        row.size_bytes = int(size)
    usage = resource.get("usageMetadata")
    tokens = usage.get("totalTokenCount") if isinstance(usage, dict) else None
    if isinstance(tokens, int) and 0 <= tokens < 10**15:
        row.token_count = tokens
    expiry = parse_time(resource.get("expirationTime") or resource.get("expireTime"))
    if expiry is not None:
        row.expires_at = expiry


def page(session: Session, user_id: int, kind: str, page_size: int | None, page_token: str | None,
         now: datetime) -> tuple[list[StoredResource], str | None]:
    """One page of the caller's live resources of `kind`, oldest first, and the next page's token."""
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    after = read_page_token(page_token) if page_token else 0
    query = (select(StoredResource)
             .where(StoredResource.user_id == user_id, StoredResource.kind == kind,
                    StoredResource.deleted_at.is_(None), StoredResource.id > after,
                    (StoredResource.expires_at.is_(None)) | (StoredResource.expires_at > now))
             .order_by(StoredResource.id).limit(size + 1))
    rows = list(session.scalars(query))
    more = len(rows) > size
    rows = rows[:size]
    return rows, (make_page_token(rows[-1].id) if more else None)


def make_page_token(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"after:{last_id}".encode()).decode().rstrip("=")


def read_page_token(token: str) -> int:
    """The id a page token continues after; `BadRequest` for one the Vault did not make."""
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        prefix, _, value = text.partition(":")
        if prefix == "after" and COUNT.fullmatch(value):
            return int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise BadRequest("The page token is not valid.")


def mark_deleted(row: StoredResource, now: datetime) -> None:
    """The resource is gone upstream (deleted by its owner, expired, or lost)."""
    if row.deleted_at is None:
        row.deleted_at = now


def storage_used(session: Session, user_id: int, now: datetime) -> int:
    """Bytes the user's live files and unfinished uploads take (uploads count at their declared size)."""
    files = session.scalar(select(func.coalesce(func.sum(StoredResource.size_bytes), 0)).where(
        StoredResource.user_id == user_id, StoredResource.kind == FILE, StoredResource.deleted_at.is_(None),
        (StoredResource.expires_at.is_(None)) | (StoredResource.expires_at > now)))
    uploads = session.scalar(select(func.coalesce(func.sum(UploadSession.declared_bytes), 0)).where(
        UploadSession.user_id == user_id, UploadSession.finished_at.is_(None), UploadSession.expires_at > now))
    return int(files or 0) + int(uploads or 0)


def resources_of(session: Session, user_id: int) -> list[StoredResource]:
    """Every resource record of a user, newest first (admin pages)."""
    return list(session.scalars(select(StoredResource).where(StoredResource.user_id == user_id)
                                .order_by(StoredResource.id.desc())))


def held_by_key(session: Session, upstream_key_id: int, now: datetime) -> list[StoredResource]:
    """The live resources an upstream key holds: what becomes unreachable if it leaves the pool."""
    rows = session.scalars(select(StoredResource).where(StoredResource.upstream_key_id == upstream_key_id,
                                                        StoredResource.deleted_at.is_(None))
                           .order_by(StoredResource.id))
    return [row for row in rows if row.live(now)]


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 timestamp as Google writes it (`2026-11-29T10:00:00.123456Z`), or None."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    if "." in text:  # Google sends up to nanoseconds; Python reads microseconds
        head, _, tail = text.partition(".")
        digits = "".join(ch for ch in tail if ch.isdigit())
        text = f"{head}.{digits[:6]}{tail[len(digits):]}"
    try:
        moment = datetime.fromisoformat(text)
        moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        return None
    return moment if moment.year < LAST_YEAR else None
