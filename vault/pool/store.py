"""The upstream key pool as stored: add keys (encrypted, de-duplicated), list and delete them.

Health decisions (cooldowns, the breaker, disabling) belong to `classify`, `rotator` and
`health`; this module only keeps the durable rows and an admin's enable/disable/delete.

Deleting is soft: the row stays (state `deleted`, `deleted_at` set) so usage records keep
their `upstream_key_id` and requests still in flight on the key settle normally, but its
encrypted secret is wiped -- a deleted key cannot be read back from the database or a
backup made afterwards. The keyed fingerprint stays, so adding the same key again revives
the row (with its history) instead of making a second one. A deleted key is hidden from
the rotation, the pool page and API listing (unless asked for), the counts and `/readyz`.
"""

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.clock import utcnow
from vault.errors import NotFound, ValidationFailed
from vault.models import UpstreamKey, UpstreamKeyState
from vault.pool.egress import check_proxy_url, mask_proxy_url
from vault.pool.encryption import check_fingerprint_key
from vault.security import SecretBox, mask_secret

UPSTREAM_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_\-.]{8,256}$")


@dataclass(frozen=True)
class AddedKey:
    """The outcome of adding one key: its row, whether it was new, and whether it was a deleted key revived."""

    key: UpstreamKey
    created: bool
    revived: bool = False


def check_upstream_key(secret: str) -> str:
    """Return `secret` trimmed, or raise `ValidationFailed` if it cannot be an API key."""
    candidate = secret.strip()
    if not UPSTREAM_KEY_PATTERN.match(candidate):
        raise ValidationFailed(
            f"{mask_secret(candidate)} is not an API key: expected 8-256 letters, digits, '-', '_' or '.'."
        )
    return candidate


def add_upstream_key(session: Session, secret: str, box: SecretBox, label: str = "", revive: bool = True) -> AddedKey:
    """Add one key to the pool, or return the existing row if it is already there.

    A key that was deleted is revived (its secret stored again, active, its history kept)
    and counts as added; with `revive=False` it is returned as it is, still deleted.
    """
    secret = check_upstream_key(secret)
    fingerprint = box.fingerprint(secret)
    existing = session.scalar(select(UpstreamKey).where(UpstreamKey.fingerprint.in_(box.fingerprints(secret)))
                              .order_by(UpstreamKey.id))
    if existing is not None and existing.state is UpstreamKeyState.DELETED and revive:
        revive_upstream_key(existing, box.encrypt(secret), label)
        return AddedKey(existing, created=True, revived=True)
    if existing is not None:
        return AddedKey(existing, created=False)
    check_fingerprint_key(session, box)  # a changed fingerprint key would add every key a second time
    key = UpstreamKey(
        label=label, secret_encrypted=box.encrypt(secret), fingerprint=fingerprint,
        masked=mask_secret(secret),
    )
    session.add(key)
    session.flush()
    return AddedKey(key, created=True)


def add_upstream_keys(session: Session, secrets: list[str], box: SecretBox) -> list[AddedKey]:
    """Add several keys; all are validated before any is stored."""
    checked = [check_upstream_key(secret) for secret in secrets]
    return [add_upstream_key(session, secret, box) for secret in checked]


def revive_upstream_key(key: UpstreamKey, secret_encrypted: str, label: str = "") -> None:
    """Bring a deleted key back into the pool, healthy, with its secret stored again."""
    key.secret_encrypted = secret_encrypted
    key.state = UpstreamKeyState.ACTIVE
    key.deleted_at = key.disabled_reason = key.disabled_until = None
    key.consecutive_failures = 0
    key.label = label or key.label


def list_upstream_keys(session: Session, include_deleted: bool = False) -> list[UpstreamKey]:
    """Every pooled key, oldest first (deleted ones only if asked for)."""
    query = select(UpstreamKey).order_by(UpstreamKey.id)
    if not include_deleted:
        query = query.where(UpstreamKey.state != UpstreamKeyState.DELETED)
    return list(session.scalars(query))


def delete_upstream_key(session: Session, key: UpstreamKey) -> None:
    """Take a key out of the pool for good: marked deleted, its secret wiped, its cooldowns gone."""
    key.state = UpstreamKeyState.DELETED
    key.deleted_at = utcnow()
    key.secret_encrypted = ""
    key.proxy_url_encrypted = None  # its password too: a revived key starts on the default egress
    key.disabled_until = None
    key.disabled_reason = "deleted by an admin"
    key.cooldowns.clear()


def set_upstream_key_state(session: Session, key: UpstreamKey, active: bool, reason: str = "") -> None:
    """Enable a key (clearing its failures and cooldowns) or disable it until re-enabled."""
    if active:
        key.state = UpstreamKeyState.ACTIVE
        key.disabled_reason = None
        key.consecutive_failures = 0
        key.cooldowns.clear()
    else:
        key.state = UpstreamKeyState.DISABLED
        key.disabled_reason = reason or "disabled by an admin"
    key.disabled_until = None


def set_upstream_key_proxy(key: UpstreamKey, proxy_url: str | None, box: SecretBox) -> None:
    """Send the key's traffic through `proxy_url` (checked, stored encrypted), or None for the default egress.

    Raises `ValidationFailed` (the key unchanged) for a URL that cannot be a proxy.
    """
    key.proxy_url_encrypted = None if proxy_url is None else box.encrypt(check_proxy_url(proxy_url))


def upstream_key_proxy(key: UpstreamKey, box: SecretBox) -> str | None:
    """The key's proxy URL in clear (for the upstream client only), or None."""
    return box.decrypt(key.proxy_url_encrypted) if key.proxy_url_encrypted else None


def masked_proxy(key: UpstreamKey, box: SecretBox) -> str | None:
    """The key's proxy as it may be shown (`scheme://[user:***@]host[:port]`), or None without one."""
    try:
        return mask_proxy_url(upstream_key_proxy(key, box))
    except ValueError:
        return "(cannot be decrypted)"


def find_upstream_key(session: Session, key_id: int) -> UpstreamKey:
    """The pooled key with `key_id`, or `NotFound` (also for a deleted key)."""
    key = session.get(UpstreamKey, key_id)
    if key is None or key.state is UpstreamKeyState.DELETED:
        raise NotFound("No such upstream key.")
    return key


def count_by_state(keys: list[UpstreamKey], now: datetime) -> dict[str, int]:
    """How many keys are active, cooling down for some model, or disabled (deleted ones are not counted)."""
    counts = {"active": 0, "cooling": 0, "disabled": 0}
    for key in keys:
        if key.state is UpstreamKeyState.DELETED:
            continue
        if key.state is UpstreamKeyState.DISABLED:
            counts["disabled"] += 1
        elif any(cooldown.until > now for cooldown in key.cooldowns):
            counts["cooling"] += 1
        else:
            counts["active"] += 1
    return counts
