"""The one row of alert settings: reading it, and the admin's changes (validated, secrets encrypted)."""

import logging
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.errors import ValidationFailed
from vault.models import AlertSettings
from vault.security import SecretBox, mask_secret, mask_signing_secret

MIN_SECRET_LENGTH = 16

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Webhook:
    """Where alerts are POSTed, and the secret that signs them (both decrypted)."""

    url: str
    secret: str


def load(session: Session) -> AlertSettings | None:
    """The settings row, or None before an admin saved any."""
    return session.scalars(select(AlertSettings).order_by(AlertSettings.id).limit(1)).first()


def ensure(session: Session) -> AlertSettings:
    """The settings row, created (empty) in `session` if there is none yet."""
    row = load(session)
    if row is None:
        row = AlertSettings()
        session.add(row)
    return row


def webhook(row: AlertSettings | None, box: SecretBox) -> Webhook | None:
    """The configured webhook, or None -- also when no listed VAULT_ENCRYPTION_KEY opens it (logged), so that
    the alerts page and API still answer and the monitor still raises alerts; the admin saves it again."""
    if row is None or not row.webhook_url_encrypted or not row.webhook_secret_encrypted:
        return None
    try:
        return Webhook(box.decrypt(row.webhook_url_encrypted), box.decrypt(row.webhook_secret_encrypted))
    except ValueError:
        log.error("The alert webhook cannot be decrypted with any VAULT_ENCRYPTION_KEY entry: alerts are not "
                  "POSTed until an admin saves the webhook again (see the README, 'Rotating the encryption key').")
        return None


def check_url(url: str) -> str:
    """An http(s) URL with a host and, if any, a port from 1 to 65535 (raises `ValidationFailed`)."""
    url = url.strip()
    parts = split_url(url)
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000 \
            or parts.port == 0 or any(char.isspace() or not char.isprintable() for char in url):
        raise ValidationFailed("The webhook URL must be an http:// or https:// URL with a host (and a port from 1 "
                               "to 65535, if any), without spaces.",
                               fields={"url": "must be an http:// or https:// URL"})
    return url


def split_url(url: str) -> SplitResult | None:
    """`url`'s parts, its port read; None when `urlsplit` cannot take it (an unclosed `[`, a port that is
    not a number from 0 to 65535)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - read now, so a bad port is refused here rather than raised later
    except ValueError:
        return None
    return parts


def set_webhook(session: Session, box: SecretBox, url: str | None, secret: str | None) -> AlertSettings:
    """Save (or, with `url` None, remove) the webhook; the secret must be 16+ characters."""
    if url is None:
        row = ensure(session)
        row.webhook_url_encrypted = row.webhook_secret_encrypted = None
        return row
    url = check_url(url)
    if secret is None or len(secret) < MIN_SECRET_LENGTH or len(secret) > 512:
        raise ValidationFailed(f"The signing secret must be {MIN_SECRET_LENGTH} to 512 characters.",
                               fields={"secret": f"must be {MIN_SECRET_LENGTH} to 512 characters"})
    row = ensure(session)  # only now: a refused webhook leaves no empty row behind
    row.webhook_url_encrypted, row.webhook_secret_encrypted = box.encrypt(url), box.encrypt(secret)
    return row


def set_thresholds(session: Session, min_usable_keys: int | None, email_to: str | None) -> AlertSettings:
    """Save the pool threshold (None: no pool_low alerts) and the alert email address (None: no email)."""
    if min_usable_keys is not None and not 1 <= min_usable_keys <= 1_000_000:
        raise ValidationFailed("min_usable_keys must be between 1 and 1000000, or null.",
                               fields={"min_usable_keys": "must be between 1 and 1000000"})
    row = ensure(session)
    if row.min_usable_keys != min_usable_keys:
        row.pool_low_alerted_at = None  # a new threshold is judged afresh
    row.min_usable_keys, row.email_to = min_usable_keys, email_to or None
    return row


def masked_url(url: str) -> str:
    """The webhook URL for pages and the API: scheme and host, the rest (which may hold a token) masked."""
    parts = split_url(url)
    if parts is None:  # stored before `check_url` refused such URLs
        return mask_secret(url)
    rest = url[len(f"{parts.scheme}://{parts.netloc}"):]
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}" + (f"/{mask_secret(rest.lstrip('/'))}" if rest.strip("/") else "")


def settings_json(row: AlertSettings | None, box: SecretBox, smtp_ready: bool) -> dict:
    """The settings as admins see them: the webhook masked, never the secret."""
    hook = webhook(row, box)
    return {
        "webhook": {"url": masked_url(hook.url), "secret": mask_signing_secret(hook.secret)} if hook else None,
        "min_usable_keys": row.min_usable_keys if row else None,
        "email_to": row.email_to if row else None,
        "email_enabled": smtp_ready,
    }


def snapshot(row: AlertSettings | None, box: SecretBox) -> dict:
    """What the audit trail records of the settings: masked, like every secret outside the database."""
    hook = webhook(row, box)
    return {"webhook_url": masked_url(hook.url) if hook else None,
            "webhook_secret": mask_signing_secret(hook.secret) if hook else None,
            "min_usable_keys": row.min_usable_keys if row else None, "email_to": row.email_to if row else None}


def set_user_threshold(user, threshold_nano: int | None) -> None:
    """Alert when `user`'s balance falls below `threshold_nano` (None: never); a new threshold re-arms the alert."""
    if threshold_nano != user.low_balance_threshold_nano:
        user.low_balance_alerted_at = None
    user.low_balance_threshold_nano = threshold_nano
