"""JSON API of a user's Vault keys (`/api-keys/`) and of redeeming a top-up code (`/api/redeem`).

Its routes are listed in `vault/dashboard/__init__.py`; this module loads on the first call to one.
A key's policy (`vault.policies.settings.PolicyFields`) is set when it is minted and changed with
PATCH; both refuse fields the Vault does not know (400) and anything above the owner's limits (403).
"""

from typing import Annotated

from flask import Response, jsonify
from pydantic import Field

from vault import accounts
from vault.auth.identity import require_user
from vault.billing.money import nano_to_json
from vault.clock import utcnow
from vault.dashboard.views import redeem_code
from vault.extensions import db
from vault.jsonapi import Body, api_key_report_json, read_body
from vault.policies.settings import PolicyFields, change_key_policy, refuse_escalation, stored_changes
from vault.runtime import runtime


class NewKeyBody(PolicyFields):
    """A name and, optionally, the key's policy. Unlike most POST bodies an unknown field is refused:
    a misspelt limit would otherwise mint a key without it."""

    name: Annotated[str, Field(max_length=100)] | None = None


class KeyPolicyBody(PolicyFields):
    """The policy fields to change; absent ones keep their value, null clears one."""


def policy_part(body: NewKeyBody) -> PolicyFields:
    """The policy fields sent with a new key (already validated), without its name."""
    sent = body.model_fields_set - {"name"}
    return PolicyFields.model_construct(_fields_set=sent, **{name: getattr(body, name) for name in sent})


def api_create_key() -> tuple[Response, int]:
    """Mint a key with its policy; the response is the only time the full key is shown."""
    user = require_user()
    body = read_body(NewKeyBody, allow_empty=True)
    policy, default_rpm = policy_part(body), runtime().default_rpm
    refuse_escalation(stored_changes(policy), user.limits, default_rpm)  # before anything is written
    new_key = accounts.create_api_key(db.session, user, (body.name or "").strip())
    change_key_policy(new_key.record, policy, default_rpm)
    db.session.commit()
    return jsonify(api_key_report_json(new_key.record, utcnow()) | {"key": new_key.plaintext}), 201


def api_list_keys() -> Response:
    """The caller's keys with usage, policy and standing; never the keys themselves."""
    user, now = require_user(), utcnow()
    return jsonify([api_key_report_json(key, now) for key in accounts.list_api_keys(db.session, user)])


def api_update_key(key_id: int) -> Response:
    """Change one of the caller's keys' policy, within what their account allows."""
    user = require_user()
    body = read_body(KeyPolicyBody)
    key = accounts.find_changeable_key(db.session, user.id, key_id)
    change_key_policy(key, body, runtime().default_rpm)
    db.session.commit()
    return jsonify(api_key_report_json(key, utcnow()))


def api_revoke_key(key_id: int) -> tuple[str, int]:
    """Revoke one of the caller's keys; it stops working at once."""
    user = require_user()
    accounts.revoke_api_key(db.session, user, key_id)
    db.session.commit()
    return "", 204


class RedeemBody(Body):
    code: Annotated[str, Field(min_length=1, max_length=128)]


def api_redeem() -> Response:
    """Redeem a top-up code `{code}` for the caller; the answer has the new balance.

    Unknown, used and expired codes are 404, 409 and 410 for every caller; attempts are
    rate-limited (429) per user and address.
    """
    user = require_user()
    body = read_body(RedeemBody)
    done = redeem_code(user, body.code)
    return jsonify({"balance": nano_to_json(done.balance_nano), "balance_nano_usd": done.balance_nano,
                    "amount": nano_to_json(done.amount_nano), "amount_nano_usd": done.amount_nano,
                    "code": {"id": done.code_id, "prefix": done.prefix}})
