"""The pool at scale: import thousands of keys at once, find keys in a large pool, change many at once.

An import never fails as a whole for a few bad lines: each key is checked on its own, the
invalid ones are reported with their reason (masked), keys already pooled -- or repeated
in the same import -- count as duplicates (by fingerprint, so without decrypting anything),
and the rest are stored with one lookup and one flush per chunk instead of one per key.

A search reads one page of keys with their cooldowns in a fixed number of statements
whatever the size of the pool: the count, the page, and its cooldowns (`selectinload`).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import ColumnElement, exists, func, or_, select
from sqlalchemy.orm import Session, selectinload

from vault.errors import ValidationFailed
from vault.models import UpstreamCooldown, UpstreamKey, UpstreamKeyState
from vault.pool.encryption import check_fingerprint_key
from vault.pool.store import (
    AddedKey,
    check_upstream_key,
    delete_upstream_key,
    revive_upstream_key,
    set_upstream_key_state,
)
from vault.security import SecretBox, mask_secret

MAX_IMPORT = 10_000  # keys in one import (the API and the page)
CHUNK = 500  # fingerprints per lookup: well under every database's limit of bound parameters
KEY_STATES = ("active", "cooling", "disabled", "deleted")
BULK_ACTIONS = ("enable", "disable", "delete", "label")
BulkAction = Literal["enable", "disable", "delete", "label"]


@dataclass(frozen=True)
class InvalidKey:
    """A line of an import that cannot be a key: its masked form and why."""

    key: str
    reason: str


@dataclass
class ImportReport:
    """What an import did: the keys stored (new or revived), duplicates skipped, invalid lines."""

    added: list[AddedKey] = field(default_factory=list)
    duplicates: list[AddedKey] = field(default_factory=list)
    repeated: int = 0  # the same key more than once in the import itself
    invalid: list[InvalidKey] = field(default_factory=list)

    @property
    def duplicate_count(self) -> int:
        return len(self.duplicates) + self.repeated


def split_keys(text: str) -> list[str]:
    """The keys in pasted or uploaded text: one per line, commas, semicolons and spaces tolerated."""
    return [part for part in text.replace(",", " ").replace(";", " ").split() if part]


def import_upstream_keys(session: Session, secrets: Iterable[str], box: SecretBox, label: str = "") -> ImportReport:
    """Add every valid key of `secrets` not already pooled; report duplicates and invalid ones (flushed, not
    committed). A deleted key is revived. `ValidationFailed` only if the stored fingerprints cannot be trusted."""
    report, seen, fresh = ImportReport(), set(), []
    for raw in secrets:
        try:
            secret = check_upstream_key(raw)
        except ValidationFailed as exc:
            report.invalid.append(InvalidKey(mask_secret(raw.strip()), exc.message))
            continue
        fingerprint = box.fingerprint(secret)
        if fingerprint in seen:
            report.repeated += 1
            continue
        seen.add(fingerprint)
        fresh.append(secret)
    checked = False
    for start in range(0, len(fresh), CHUNK):
        checked = store_chunk(session, fresh[start:start + CHUNK], box, label, report, checked)
    return report


def store_chunk(session: Session, secrets: list[str], box: SecretBox, label: str, report: ImportReport,
                checked: bool) -> bool:
    """Store one chunk with a single lookup of its fingerprints; returns whether the fingerprint key was checked."""
    prints = {secret: box.fingerprints(secret) for secret in secrets}
    wanted = [fingerprint for forms in prints.values() for fingerprint in forms]
    stored = {row.fingerprint: row for row in session.scalars(
        select(UpstreamKey).where(UpstreamKey.fingerprint.in_(wanted)).order_by(UpstreamKey.id))}
    new_rows = []
    for secret, forms in prints.items():
        existing = next((stored[form] for form in forms if form in stored), None)
        if existing is not None and existing.state is UpstreamKeyState.DELETED:
            revive_upstream_key(existing, box.encrypt(secret), label)
            report.added.append(AddedKey(existing, created=True, revived=True))
        elif existing is not None:
            report.duplicates.append(AddedKey(existing, created=False))
        else:
            new_rows.append(UpstreamKey(label=label, secret_encrypted=box.encrypt(secret), fingerprint=forms[0],
                                        masked=mask_secret(secret)))
    if new_rows and not checked:
        check_fingerprint_key(session, box)  # a changed fingerprint key would add every key a second time
        checked = True
    session.add_all(new_rows)
    session.flush()
    report.added.extend(AddedKey(row, created=True) for row in new_rows)
    return checked


@dataclass(frozen=True)
class KeySearch:
    """Which keys to list: text in the label, masked key or last error; a state; a page."""

    q: str = ""
    state: str = ""
    page: int = 1
    per_page: int = 50
    include_deleted: bool = False


def cooling_clause(now: datetime) -> ColumnElement[bool]:
    """SQL: the key has a cooldown still running for some model (or for all, its breaker)."""
    return exists().where(UpstreamCooldown.upstream_key_id == UpstreamKey.id, UpstreamCooldown.until > now)


def state_clause(state: str, now: datetime) -> ColumnElement[bool]:
    """SQL for a state as the pool page shows it: `active` and `cooling` split the enabled keys."""
    if state == "disabled":
        return UpstreamKey.state == UpstreamKeyState.DISABLED
    if state == "deleted":
        return UpstreamKey.state == UpstreamKeyState.DELETED
    enabled = UpstreamKey.state == UpstreamKeyState.ACTIVE
    return enabled & cooling_clause(now) if state == "cooling" else enabled & ~cooling_clause(now)


def search_upstream_keys(session: Session, search: KeySearch, now: datetime) -> tuple[list[UpstreamKey], int]:
    """One page of keys (oldest first) matching `search`, with their cooldowns loaded, and how many match."""
    query = select(UpstreamKey)
    if search.state:
        query = query.where(state_clause(search.state, now))
    elif not search.include_deleted:
        query = query.where(UpstreamKey.state != UpstreamKeyState.DELETED)
    if search.q:
        pattern = "%" + search.q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(*(func.lower(column).like(pattern, escape="\\") for column in
                                  (UpstreamKey.label, UpstreamKey.masked, UpstreamKey.last_error))))
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    rows = session.scalars(query.options(selectinload(UpstreamKey.cooldowns)).order_by(UpstreamKey.id)
                           .limit(search.per_page).offset((search.page - 1) * search.per_page))
    return list(rows), int(total)


def count_states(session: Session, now: datetime) -> dict[str, int]:
    """How many keys are active, cooling and disabled, counted by the database (deleted ones left out)."""
    cooling = cooling_clause(now)
    query = select(UpstreamKey.state, cooling.label("cooling"), func.count()).where(
        UpstreamKey.state != UpstreamKeyState.DELETED).group_by(UpstreamKey.state, cooling)
    counts = {"active": 0, "cooling": 0, "disabled": 0}
    for state, is_cooling, count in session.execute(query):
        name = "disabled" if state is UpstreamKeyState.DISABLED else "cooling" if is_cooling else "active"
        counts[name] += count
    return counts


def find_upstream_keys(session: Session, ids: Sequence[int]) -> list[UpstreamKey]:
    """The pooled (not deleted) keys among `ids`, with their cooldowns, oldest first."""
    found: list[UpstreamKey] = []
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), CHUNK):
        found.extend(session.scalars(
            select(UpstreamKey).options(selectinload(UpstreamKey.cooldowns))
            .where(UpstreamKey.id.in_(unique[start:start + CHUNK]), UpstreamKey.state != UpstreamKeyState.DELETED)))
    return sorted(found, key=lambda key: key.id)


def change_upstream_keys(session: Session, keys: list[UpstreamKey], action: BulkAction,
                         label: str = "") -> list[UpstreamKey]:
    """Enable, disable, delete or relabel `keys`; returns those that actually changed (the caller commits)."""
    changed = []
    for key in keys:
        if action == "label":
            if key.label != label.strip():
                key.label = label.strip()
                changed.append(key)
        elif action == "delete":
            delete_upstream_key(session, key)
            changed.append(key)
        elif needs_state_change(key, action == "enable"):
            set_upstream_key_state(session, key, action == "enable")
            changed.append(key)
    return changed


def needs_state_change(key: UpstreamKey, enable: bool) -> bool:
    """Whether enabling (or disabling) `key` changes it: an admin's enable also ends its cooldowns, and an
    admin's disable also makes a timed disable (resting after failures) last until re-enabled."""
    if enable:
        return key.state is not UpstreamKeyState.ACTIVE or bool(key.cooldowns)
    return key.state is UpstreamKeyState.ACTIVE or key.disabled_until is not None
