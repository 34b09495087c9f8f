"""Admin JSON API for alerts: `/admin/api/alerts…` (the role is checked once, in the blueprint).

The webhook URL and secret are stored encrypted with the runtime's secret box and only ever
shown masked. Its routes are listed in `vault/admin/__init__.py`; this module loads on the
first call to one.
"""

from decimal import Decimal
from typing import Annotated

from flask import Response, jsonify, request
from pydantic import Field

from vault.admin.auditing import audited_change
from vault.alerts import raising
from vault.alerts import settings as alert_settings
from vault.billing.money import nano_to_json, usd_to_nano
from vault.errors import ValidationFailed
from vault.extensions import db
from vault.inbound import whole_number
from vault.jsonapi import ChangeBody, Email, read_body
from vault.models import User
from vault.runtime import runtime

Threshold = Annotated[Decimal, Field(strict=False, ge=0, le=1_000_000, decimal_places=9, allow_inf_nan=False)]


class WebhookBody(ChangeBody):
    url: Annotated[str, Field(min_length=1, max_length=2000)] | None
    secret: Annotated[str, Field(min_length=alert_settings.MIN_SECRET_LENGTH, max_length=512)] | None = None


class AlertSettingsBody(ChangeBody):
    min_usable_keys: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    email_to: Email | None = None


def settings_answer() -> dict:
    """The settings as shown to admins (masked)."""
    vault = runtime()
    return alert_settings.settings_json(alert_settings.load(db.session), vault.secret_box,
                                        smtp_ready=vault.alerts.smtp is not None)


def show_alerts() -> Response:
    """The alert settings and the newest alerts with their delivery state (`?type=` filters, `?limit=` ≤ 200)."""
    kind = request.args.get("type") or None
    if kind is not None and kind not in raising.KINDS:
        raise ValidationFailed(fields={"type": f"must be one of {', '.join(raising.KINDS)}"})
    limit = whole_number(request.args.get("limit", "50"), 200)
    if not limit:
        raise ValidationFailed(fields={"limit": "must be a whole number from 1 to 200"})
    events = raising.recent_events(db.session, limit, kind)
    return jsonify(settings_answer() | {"events": [raising.event_json(event) for event in events]})


def put_webhook() -> Response:
    """Set the webhook `{url, secret}` (http(s), secret of 16+ characters), or remove it with `{url: null}`."""
    body = read_body(WebhookBody)
    save_webhook(body.url, body.secret)
    db.session.commit()
    return jsonify(settings_answer())


def save_webhook(url: str | None, secret: str | None) -> None:
    """Store the webhook (encrypted) and audit the change, masked."""
    box = runtime().secret_box
    before = alert_settings.snapshot(alert_settings.load(db.session), box)
    row = alert_settings.set_webhook(db.session, box, url, secret)
    audited_change("alerts.webhook", "alerts", before, alert_settings.snapshot(row, box))


def put_settings() -> Response:
    """Set `{min_usable_keys, email_to}`; null (or leaving one out) turns that alert channel off."""
    body = read_body(AlertSettingsBody)
    save_settings(body.min_usable_keys, body.email_to)
    db.session.commit()
    return jsonify(settings_answer())


def save_settings(min_usable_keys: int | None, email_to: str | None) -> None:
    """Store the pool threshold and the email address; audited."""
    box = runtime().secret_box
    before = alert_settings.snapshot(alert_settings.load(db.session), box)
    row = alert_settings.set_thresholds(db.session, min_usable_keys, email_to)
    audited_change("alerts.settings", "alerts", before, alert_settings.snapshot(row, box))


def threshold_json(user: User) -> float | None:
    """A user's low-balance threshold in USD, or None."""
    nano = user.low_balance_threshold_nano
    return None if nano is None else nano_to_json(nano)


def change_threshold(user: User, amount: Decimal | None) -> None:
    """Set `user`'s low-balance threshold (USD, None: no alert); audited as `user.low_balance_threshold`."""
    before = {"low_balance_threshold": threshold_json(user)}
    alert_settings.set_user_threshold(user, None if amount is None else usd_to_nano(amount))
    audited_change("user.low_balance_threshold", f"user:{user.id}", before,
                   {"low_balance_threshold": threshold_json(user)})
