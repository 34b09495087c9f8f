"""Admin JSON API: `/admin/api/…` (the role is checked once, in the blueprint).

Its routes are listed in `vault/admin/__init__.py`; this module loads on the first call to one.
"""

from typing import Annotated, Any, Literal

from flask import Response, current_app, jsonify, request
from pydantic import Field

from vault import accounts, pool
from vault.admin.billing_api import BalanceBody, change_balance
from vault.admin.views import refresh_pool
from vault.auth.identity import require_user
from vault.clock import isoformat, utcnow
from vault.extensions import db
from vault.jsonapi import CHANGE_CONFIG, Body, ChangeBody, api_key_report_json, read_body, user_json
from vault.models import UpstreamKey, User
from vault.policies.settings import PolicyFields, UserLimitFields, change_key_policy, change_user_limits
from vault.resources import summary
from vault.runtime import runtime


class AddKeysBody(Body):
    keys: Annotated[list[str], Field(min_length=1, max_length=1000)]


class PatchApiKeyBody(PolicyFields):
    """Any of a Vault key's policy fields; absent ones keep their value, null clears one."""


def update_api_key(key_id: int) -> Response:
    """Change any user's Vault key's policy: an admin may lift it above the global default
    requests per minute, never above its owner's limits (lower those first)."""
    body = read_body(PatchApiKeyBody)
    key = accounts.find_changeable_key(db.session, None, key_id)
    change_key_policy(key, body, None)
    db.session.commit()
    return jsonify(api_key_report_json(key, utcnow()))


class PatchKeyBody(ChangeBody):
    state: Literal["active", "disabled"] | None = None
    label: Annotated[str, Field(max_length=100)] | None = None
    proxy_url: Annotated[str, Field(max_length=2048)] | None = None  # null (sent) clears it; absent keeps it


class PatchUserBody(BalanceBody):
    model_config = CHANGE_CONFIG

    is_active: bool | None = None
    is_admin: bool | None = None
    limits: UserLimitFields | None = None  # null (sent) clears every limit; inside, null clears one


def set_limits(user: User, limits: UserLimitFields | None) -> None:
    """Change the limits sent (`limits: null` clears them all); lowering one lowers every key of the user's."""
    if limits is None:
        user.limits = None
    else:
        change_user_limits(user, limits)


def list_users() -> Response:
    """Every user with balance, state and usage totals."""
    users = db.session.scalars(db.select(User).order_by(User.id)).all()
    return jsonify([user_json(user) for user in users])


def update_user(user_id: int) -> Response:
    """Activate/deactivate a user, grant/revoke admin, change their balance or limits; an admin cannot
    lock themselves out."""
    body = read_body(PatchUserBody)
    user = accounts.get_user(db.session, user_id)
    accounts.refuse_self_lockout(require_user(), user, body.is_active, body.is_admin)
    if body.is_active is not None:
        accounts.set_user_active(db.session, user, body.is_active)
    if body.is_admin is not None:
        user.is_admin = body.is_admin
    if "limits" in body.model_fields_set:
        set_limits(user, body.limits)
    change_balance(user, body)
    db.session.commit()
    db.session.refresh(user)
    return jsonify(user_json(user))


def list_user_resources(user_id: int) -> Response:
    """A user's files and cached contents (deleted and expired ones too) with their state, and their storage."""
    user = accounts.get_user(db.session, user_id)
    report = summary.user_resources(db.session, user.id, current_app.config["VAULT_USER_STORAGE_BYTES"], utcnow())
    return jsonify(summary.user_resources_json(report))


def upstream_key_json(key: UpstreamKey, held: dict[int, int]) -> dict[str, Any]:
    """A pooled key with its health and how many live resources it holds (`held`, by key id); only ever
    the masked form of the secret."""
    now = utcnow()
    return {
        "id": key.id,
        "key": key.masked,
        "label": key.label,
        "proxy": pool.masked_proxy(key, runtime().secret_box),
        "state": key.state.value,
        "disabled_reason": key.disabled_reason,
        "disabled_until": isoformat(key.disabled_until),
        "consecutive_failures": key.consecutive_failures,
        "last_error": key.last_error,
        "last_error_at": isoformat(key.last_error_at),
        "last_used_at": isoformat(key.last_used_at),
        "request_count": key.request_count,
        "failure_count": key.failure_count,
        "cooldowns": [
            {"model": cooldown.model, "until": isoformat(cooldown.until), "reason": cooldown.reason}
            for cooldown in key.cooldowns if cooldown.until > now
        ],
        "created_at": isoformat(key.created_at),
        "deleted_at": isoformat(key.deleted_at),
        "resources_held": held.get(key.id, 0),
    }


def list_upstream_keys() -> Response:
    """The pool with each key's health; deleted keys too with `?include_deleted=1`."""
    include_deleted = request.args.get("include_deleted", "").lower() in ("1", "true", "yes")
    keys = pool.list_upstream_keys(db.session, include_deleted=include_deleted)
    held = summary.held_counts(db.session, utcnow())
    return jsonify([upstream_key_json(key, held) for key in keys])


def add_upstream_keys() -> tuple[Response, int]:
    """Add `{keys: [...]}`; keys already pooled are reported, not duplicated; deleted ones are revived."""
    body = read_body(AddKeysBody)
    results = pool.add_upstream_keys(db.session, body.keys, runtime().secret_box)
    db.session.commit()
    refresh_pool(results)
    held = summary.held_counts(db.session, utcnow())
    return jsonify([upstream_key_json(result.key, held) | {"created": result.created} for result in results]), 201


def update_upstream_key(key_id: int) -> Response:
    """Enable or disable a key by hand, relabel it, or set its egress proxy (`proxy_url: null` clears it)."""
    body = read_body(PatchKeyBody)
    key = pool.find_upstream_key(db.session, key_id)
    if "proxy_url" in body.model_fields_set:
        pool.set_upstream_key_proxy(key, body.proxy_url, runtime().secret_box)
    if body.state is not None:
        pool.set_upstream_key_state(db.session, key, body.state == "active")
    if body.label is not None:
        key.label = body.label.strip()
    db.session.commit()
    if body.state is not None:
        runtime().health.set_enabled(key.id, body.state == "active")
    elif "proxy_url" in body.model_fields_set:
        runtime().health.refresh(force=True)
    return jsonify(upstream_key_json(key, summary.held_counts(db.session, utcnow())))


def delete_upstream_key(key_id: int) -> tuple[str, int]:
    """Take a key out of the pool for good (soft: its usage history keeps pointing at it)."""
    pool.delete_upstream_key(db.session, pool.find_upstream_key(db.session, key_id))
    db.session.commit()
    runtime().health.refresh(force=True)
    return "", 204
