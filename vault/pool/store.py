"""The upstream key pool as stored: add keys (encrypted, de-duplicated) and list them.

Health decisions (cooldowns, the breaker, disabling) belong to `classify`, `rotator` and
`health`; this module only keeps the durable rows and an admin's enable/disable.
"""

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.errors import NotFound, ValidationFailed
from vault.models import UpstreamKey, UpstreamKeyState
from vault.security import SecretBox, mask_secret

UPSTREAM_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_\-.]{8,256}$")


@dataclass(frozen=True)
class AddedKey:
    """The outcome of adding one key: its row and whether it was new."""

    key: UpstreamKey
    created: bool


def check_upstream_key(secret: str) -> str:
    """Return `secret` trimmed, or raise `ValidationFailed` if it cannot be an API key."""
    candidate = secret.strip()
    if not UPSTREAM_KEY_PATTERN.match(candidate):
        raise ValidationFailed(
            f"{mask_secret(candidate)} is not an API key: expected 8-256 letters, digits, '-', '_' or '.'."
        )
    return candidate


def add_upstream_key(session: Session, secret: str, box: SecretBox, label: str = "") -> AddedKey:
    """Add one key to the pool, or return the existing row if it is already there."""
    secret = check_upstream_key(secret)
    fingerprint = box.fingerprint(secret)
    existing = session.scalar(select(UpstreamKey).where(UpstreamKey.fingerprint == fingerprint))
    if existing is not None:
        return AddedKey(existing, created=False)
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


def list_upstream_keys(session: Session) -> list[UpstreamKey]:
    """Every pooled key, oldest first."""
    return list(session.scalars(select(UpstreamKey).order_by(UpstreamKey.id)))


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


def find_upstream_key(session: Session, key_id: int) -> UpstreamKey:
    """The pooled key with `key_id`, or `NotFound`."""
    key = session.get(UpstreamKey, key_id)
    if key is None:
        raise NotFound("No such upstream key.")
    return key


def count_by_state(keys: list[UpstreamKey], now: datetime) -> dict[str, int]:
    """How many keys are active, cooling down for some model, or disabled."""
    counts = {"active": 0, "cooling": 0, "disabled": 0}
    for key in keys:
        if key.state is UpstreamKeyState.DISABLED:
            counts["disabled"] += 1
        elif any(cooldown.until > now for cooldown in key.cooldowns):
            counts["cooling"] += 1
        else:
            counts["active"] += 1
    return counts
