"""Encryption-key rotation for everything stored encrypted, and the guard that keeps fingerprints meaningful.

`VAULT_ENCRYPTION_KEY` lists Fernet keys: the first encrypts, all decrypt. Rotating is
"put a new key first, restart, `flask --app wsgi upstream reencrypt`, drop the old key"
(README: Rotating the encryption key). `reencrypt_stored` is the middle step: every stored
key (and its proxy URL) is encrypted again under the first key, and a fingerprint made under
another key (the former first-key rule) is rewritten under the current fingerprint key
(`reencrypt_pool`); so are the alert webhook's URL and secret and the upstream URL of every
upload still open (`reencrypt_others`).

A deleted key's secret is wiped, so its fingerprint can never be recomputed: that is why
the fingerprint key must outlive encryption keys (`SecretBox`), and why adding a key is
refused when the stored fingerprints show that it changed (`check_fingerprint_key`) --
otherwise every configured key would quietly be added a second time.
"""

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from vault.clock import utcnow
from vault.errors import ValidationFailed
from vault.models import AlertSettings, UploadSession, UpstreamKey, UpstreamKeyState
from vault.security import SecretBox


@dataclass
class Reencrypted:
    """What `reencrypt_pool` did: counts, and the ids of rows it could not bring up to date."""

    reencrypted: int = 0
    refingerprinted: int = 0
    deleted: int = 0
    undecryptable: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    others: int = 0  # the alert webhook, open uploads' upstream URLs
    unreadable: list[str] = field(default_factory=list)  # those of them no listed key opens, named


def reencrypt_stored(session: Session, box: SecretBox, now: datetime | None = None) -> Reencrypted:
    """Encrypt every stored secret under the first Fernet key: the pool (`reencrypt_pool`), then the rest
    (`reencrypt_others`, with uploads open at `now`). The caller commits."""
    report = reencrypt_pool(session, box)
    reencrypt_others(session, box, now or utcnow(), report)
    return report


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


def reencrypt_others(session: Session, box: SecretBox, now: datetime, report: Reencrypted) -> None:
    """Encrypt the alert webhook and the upstream URL of each upload still open under the first Fernet key,
    noting in `report` what was rewritten and what no key opens. Finished and expired uploads are never
    read again, so they are left as they are."""
    for row in session.scalars(select(AlertSettings).order_by(AlertSettings.id)).all():
        tokens = {"webhook_url_encrypted": row.webhook_url_encrypted,
                  "webhook_secret_encrypted": row.webhook_secret_encrypted}
        rewrite(session, box, AlertSettings, row.id, tokens, "the alert webhook", report)
    open_uploads = select(UploadSession).where(UploadSession.upstream_url_encrypted != "",
                                               UploadSession.finished_at.is_(None), UploadSession.expires_at > now)
    for row in session.scalars(open_uploads.order_by(UploadSession.id)).all():
        rewrite(session, box, UploadSession, row.id, {"upstream_url_encrypted": row.upstream_url_encrypted},
                f"upload session {row.id}", report)
    session.expire_all()


def rewrite(session: Session, box: SecretBox, model, row_id: int, tokens: dict[str, str | None], name: str,
            report: Reencrypted) -> None:
    """Write row `row_id`'s tokens (those set) encrypted under the first key, if it still holds the ones read
    (an admin may have changed them meanwhile)."""
    tokens = {column: token for column, token in tokens.items() if token}
    if not tokens:
        return
    try:
        values = {column: box.rotate(token) for column, token in tokens.items()}
    except ValueError:
        report.unreadable.append(name)
        return
    still = [getattr(model, column) == token for column, token in tokens.items()]
    report.others += session.execute(update(model).where(model.id == row_id, *still).values(**values)
                                     .execution_options(synchronize_session=False)).rowcount


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
