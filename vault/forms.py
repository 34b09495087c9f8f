"""Forms shared by every area: the button form, the limits a key's policy and a user's share, and the
per-submission form token (`claim_form_token`, see `vault.idempotency`).

A policy form is sent whole: an empty field clears that limit. Its values are checked once more
by the JSON API's rules (`vault.policies.settings`), so a page and the API refuse the same things,
with the error next to the field it names.
"""

import re
from collections.abc import Callable
from datetime import UTC
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from flask import after_this_request, current_app, flash, redirect, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import DateTimeLocalField, DecimalField, IntegerField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, NumberRange, Optional

from vault import idempotency
from vault.clock import utcnow
from vault.errors import BadRequest, Forbidden, ValidationFailed
from vault.extensions import db
from vault.models import ApiKey, User

LIST_SEPARATORS = re.compile(r"[\s,]+")
NANO = Decimal(10) ** 9


ALREADY_SENT = "That form was already sent; it was not done a second time."


def token_required(view: Callable) -> Callable:
    """Mark a view whose form must carry a form token (the money forms): one without it is a 400."""
    view.form_token_required = True
    return view


def claim_form_token():
    """A blueprint's `before_request`: a POSTed form's token is claimed before its view runs.

    A token already claimed means the same rendered form was sent again: nothing is done and the
    user is sent back with a notice. A form without a token (a script, a test client) does its work
    unless its view is marked `token_required`; the browser always sends one, from `csrf()`.
    """
    if request.method != "POST" or request.is_json or not current_user.is_authenticated:
        return None
    token = request.form.get(idempotency.FIELD, "")
    if not token:
        view = current_app.view_functions.get(request.endpoint or "")
        if getattr(view, "form_token_required", False):
            raise BadRequest("The form expired; reload the page and try again.")
        return None
    if not idempotency.well_formed(token):
        raise BadRequest("The form expired; reload the page and try again.")
    if idempotency.claim(db.session, token, current_user.id, utcnow()):
        after_this_request(lambda response: release_unless_done(response, token))
        return None
    flash(ALREADY_SENT, "info")
    return redirect(same_site_referrer() or url_for("dashboard.home"))


def release_unless_done(response, token: str):
    """A refused submission (4xx/5xx) did not do its work: give its token back, so the corrected form
    can be sent again."""
    if response.status_code >= 400:
        idempotency.release(db.session, token)
    return response


def same_site_referrer() -> str | None:
    """The page the form was sent from, if it is on this site (path and query only)."""
    parts = urlsplit(request.referrer or "")
    if parts.netloc != request.host or not parts.path.startswith("/"):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token."""


class LimitsForm(FlaskForm):
    """The limits a key's policy and a user's ceilings share (empty: not set)."""

    allowed_models = StringField("Models", validators=[Optional(), Length(max=4000)],
                                 description="Patterns, comma-separated, e.g. gemini-2.5-flash*. Empty: any model.")
    spend_cap = DecimalField("Spend cap (USD)", places=None, validators=[Optional(), NumberRange(0, 1_000_000)])
    spend_cap_period = SelectField("Cap resets", default="", choices=[
        SelectChoice("", "never (whole life)"), SelectChoice("day", "daily"), SelectChoice("week", "weekly"),
        SelectChoice("month", "monthly")])
    rate_limit_rpm = IntegerField("Requests / minute", validators=[Optional(), NumberRange(0, 1_000_000)])
    rate_limit_tpm = IntegerField("Tokens / minute", validators=[Optional(), NumberRange(1, 1_000_000_000)])
    max_concurrency = IntegerField("Concurrent requests", validators=[Optional(), NumberRange(1, 100_000)])
    allowed_ips = StringField("IP addresses", validators=[Optional(), Length(max=4000)],
                              description="CIDRs or addresses, comma-separated. Empty: any address.")

    NAMES = ("allowed_models", "spend_cap", "spend_cap_period", "rate_limit_rpm", "rate_limit_tpm",
             "max_concurrency", "allowed_ips")
    LISTS = ("allowed_models", "allowed_ips")

    def changes(self) -> dict[str, Any]:
        """Every field as the JSON API takes it (empty: null)."""
        changes = {name: self[name].data if self[name].data not in ("", None) else None for name in self.NAMES}
        for name in self.LISTS:
            text = (self[name].data or "").strip()
            changes[name] = [item for item in LIST_SEPARATORS.split(text) if item] if text else None
        return changes

    def refuse(self, error: ValidationFailed | Forbidden) -> None:
        """Show a refusal of the policy rules next to the field it names (`spend_cap: …`)."""
        fields = getattr(error, "fields", None) or {error.message.partition(":")[0]: error.message}
        for name, message in fields.items():
            target = name.partition(".")[0]
            field = self[target] if target in self else self[self.NAMES[0]]
            field.errors = [*field.errors, message.removeprefix(f"{target}: ")]


class KeyPolicyForm(LimitsForm):
    """A Vault key's own policy, as its owner or an admin edits it."""

    expires_at = DateTimeLocalField("Expires (UTC)", format=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"],
                                    validators=[Optional()], description="Empty: never.")

    NAMES = ("expires_at", *LimitsForm.NAMES)

    def changes(self) -> dict[str, Any]:
        changes = super().changes()
        if changes["expires_at"] is not None:
            changes["expires_at"] = changes["expires_at"].replace(tzinfo=UTC)
        return changes


def stored_to_form(settings: dict[str, Any]) -> dict[str, Any]:
    """Stored policy values (a key's columns or a user's limits) as a policy form's data."""
    data = {name: value for name, value in settings.items() if name != "spend_cap_nano"}
    for name in ("allowed_models", "allowed_ips", "visible_models"):
        if data.get(name) is not None:
            data[name] = ", ".join(data[name])
    if settings.get("spend_cap_nano") is not None:
        data["spend_cap"] = (Decimal(settings["spend_cap_nano"]) / NANO).normalize()
    if data.get("expires_at") is not None:
        data["expires_at"] = data["expires_at"].astimezone(UTC).replace(tzinfo=None, second=0, microsecond=0)
    data["spend_cap_period"] = data.get("spend_cap_period") or ""
    return data


def save_key_policy(form: KeyPolicyForm, key: ApiKey, default_rpm: int | None) -> bool:
    """Apply a validated policy form to `key` (`default_rpm` as in `change_key_policy`); False, with the
    errors in the form, if the policy rules refuse it."""
    # The rules live with the JSON API's pydantic models: loaded by the first save, not by every worker.
    from vault.jsonapi import parse_body
    from vault.policies.settings import PolicyFields, change_key_policy

    try:
        change_key_policy(key, parse_body(PolicyFields, form.changes()), default_rpm)
    except (ValidationFailed, Forbidden) as error:
        form.refuse(error)
        return False
    return True


def save_user_limits(form: LimitsForm, user: User) -> bool:
    """Apply a validated limits form to `user`; False, with the errors in the form, if refused."""
    from vault.jsonapi import parse_body
    from vault.policies.settings import UserLimitFields, change_user_limits

    try:
        change_user_limits(user, parse_body(UserLimitFields, form.changes()))
    except ValidationFailed as error:
        form.refuse(error)
        return False
    return True
