"""Encryption-key rotation for the stored pool, and the guard that keeps fingerprints meaningful.

`VAULT_ENCRYPTION_KEY` lists Fernet keys: the first encrypts, all decrypt. Rotating is
"put a new key first, restart, `flask --app wsgi upstream reencrypt`, drop the old key"
(README: Rotating the encryption key). `reencrypt_pool` is the middle step: every stored
key is encrypted again under the first key, and a fingerprint made under another key (the
former first-key rule) is rewritten under the current fingerprint key.

A deleted key's secret is wiped, so its fingerprint can never be recomputed: that is why
the fingerprint key must outlive encryption keys (`SecretBox`), and why adding a key is
refused when the stored fingerprints show that it changed (`check_fingerprint_key`) --
otherwise every configured key would quietly be added a second time.
"""

from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from vault.errors import ValidationFailed
from vault.models import UpstreamKey, UpstreamKeyState
from vault.security import SecretBox


@dataclass
class Reencrypted:
    """What `reencrypt_pool` did: counts, and the ids of rows it could not bring up to date."""

    reencrypted: int = 0
    refingerprinted: int = 0
    deleted: int = 0
    undecryptable: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)


def stored_keys(session: Session) -> list[UpstreamKey]:
    """Every row that still holds a secret, oldest first."""
    return list(session.scalars(select(UpstreamKey).where(
        UpstreamKey.state != UpstreamKeyState.DELETED, UpstreamKey.secret_encrypted != "").order_by(UpstreamKey.id)))


def reencrypt_pool(session: Session, box: SecretBox) -> Reencrypted:
    """Encrypt every stored key (and its proxy URL) under the first Fernet key, its fingerprint under the
    fingerprint key.

    Each row is written only if it still holds the token that was read, so a key deleted
    meanwhile stays wiped. The caller commits.
    """
    report = Reencrypted(deleted=session.query(UpstreamKey).filter(
        UpstreamKey.state == UpstreamKeyState.DELETED).count())
    taken = set(session.scalars(select(UpstreamKey.fingerprint)))
    for row in stored_keys(session):
        try:
            token = box.rotate(row.secret_encrypted)
            proxy_token = box.rotate(row.proxy_url_encrypted) if row.proxy_url_encrypted else None
        except ValueError:
            report.undecryptable.append(row.id)
            continue
        values = {"secret_encrypted": token, "proxy_url_encrypted": proxy_token}
        fingerprint = box.fingerprint(box.decrypt(token))
        if fingerprint != row.fingerprint and fingerprint in taken:
            report.duplicates.append(row.id)  # the same key stored twice (the old first-key rule did that)
        elif fingerprint != row.fingerprint:
            values["fingerprint"] = fingerprint
            taken.add(fingerprint)
            report.refingerprinted += 1
        report.reencrypted += session.execute(update(UpstreamKey).where(
            UpstreamKey.id == row.id, UpstreamKey.secret_encrypted == row.secret_encrypted,
            same_proxy(row.proxy_url_encrypted)).values(**values)).rowcount
    session.expire_all()
    return report


def same_proxy(token: str | None):
    """The condition that a row still holds the proxy token that was read (an admin may have changed it)."""
    column = UpstreamKey.proxy_url_encrypted
    return column.is_(None) if token is None else column == token


def check_fingerprint_key(session: Session, box: SecretBox) -> None:
    """`ValidationFailed` if a stored key's fingerprint was made with a key this box does not know.

    One readable row is enough to tell: its secret, fingerprinted under every accepted key,
    must give the stored fingerprint.
    """
    row = session.scalar(select(UpstreamKey).where(
        UpstreamKey.state != UpstreamKeyState.DELETED, UpstreamKey.secret_encrypted != "")
        .order_by(UpstreamKey.id.desc()).limit(1))
    if row is None:
        return
    try:
        secret = box.decrypt(row.secret_encrypted)
    except ValueError:
        return  # undecryptable keys are reported where they are read
    if row.fingerprint not in box.fingerprints(secret):
        raise ValidationFailed(
            "The stored upstream keys were fingerprinted with another key, so new keys cannot be told from "
            "stored ones: set VAULT_FINGERPRINT_KEY to the encryption key you dropped last (see the README, "
            "'Rotating the encryption key')."
        )
