"""Admin JSON API: `/admin/api/…` (the role is checked once, in the blueprint).

Its routes are listed in `vault/admin/__init__.py`; this module loads on the first call to one.
"""

from typing import Annotated, Any, Literal

from flask import Response, current_app, jsonify, request
from pydantic import Field

from vault import accounts, jobs, pool
from vault.admin import auditing
from vault.admin.alerts_api import Threshold, change_threshold
from vault.admin.auditing import audited, audited_change
from vault.admin.billing_api import BalanceBody, change_balance
from vault.admin.pool_views import apply_bulk, start_pool_check
from vault.admin.views import refresh_pool
from vault.auth.identity import require_user
from vault.clock import isoformat, utcnow
from vault.errors import ValidationFailed
from vault.extensions import db
from vault.inbound import INTEGER_MAX
from vault.jsonapi import CHANGE_CONFIG, Body, ChangeBody, api_key_report_json, parse_body, read_body, user_json
from vault.models import UpstreamKey, User
from vault.policies.settings import PolicyFields, UserLimitFields, change_key_policy, change_user_limits
from vault.pool import bulk
from vault.pool.bulk import KeySearch
from vault.resources import summary
from vault.runtime import runtime


class AddKeysBody(Body):
    keys: Annotated[list[Annotated[str, Field(max_length=512)]], Field(min_length=1, max_length=bulk.MAX_IMPORT)]
    label: Annotated[str, Field(max_length=100)] = ""


class KeyListQuery(Body):
    """`GET /admin/api/upstream-keys` query: text, state and a page."""

    page: Annotated[int, Field(ge=1, le=10**6)] = 1
    per_page: Annotated[int, Field(ge=1, le=500)] = 50
    q: Annotated[str, Field(max_length=200)] = ""
    state: Literal["", "active", "cooling", "disabled", "deleted"] = ""
    include_deleted: bool = False


class BulkKeysBody(Body):
    action: Literal["enable", "disable", "delete", "label"]
    ids: Annotated[list[Annotated[int, Field(ge=1, le=INTEGER_MAX)]], Field(min_length=1, max_length=bulk.MAX_IMPORT)]
    label: Annotated[str, Field(max_length=100)] | None = None


class CheckKeysBody(Body):
    ids: Annotated[list[int], Field(min_length=1, max_length=bulk.MAX_IMPORT)] | None = None


class PatchApiKeyBody(PolicyFields):
    """Any of a Vault key's policy fields; absent ones keep their value, null clears one."""


def update_api_key(key_id: int) -> Response:
    """Change any user's Vault key's policy: an admin may lift it above the global default
    requests per minute, never above its owner's limits (lower those first)."""
    body = read_body(PatchApiKeyBody)
    key = accounts.find_changeable_key(db.session, None, key_id)
    before = auditing.key_policy(key)
    change_key_policy(key, body, None)
    audited_change("api_key.policy", f"api_key:{key.id}", before, auditing.key_policy(key))
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
    low_balance_threshold: Threshold | None = None  # USD; null (sent) turns the user's low-balance alert off


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
    state, limits = auditing.user_state(user), auditing.user_limits(user)
    if body.is_active is not None:
        accounts.set_user_active(db.session, user, body.is_active)
    if body.is_admin is not None:
        user.is_admin = body.is_admin
    if "limits" in body.model_fields_set:
        set_limits(user, body.limits)
    change_balance(user, body)
    if "low_balance_threshold" in body.model_fields_set:
        change_threshold(user, body.low_balance_threshold)
    audited_change("user.update", f"user:{user.id}", state, auditing.user_state(user))
    audited_change("user.limits", f"user:{user.id}", limits, auditing.user_limits(user))
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
    """A page of the pool with each key's health: `q` finds text in the label, masked key or last error,
    `state` is active, cooling, disabled or deleted; deleted keys are left out unless asked for."""
    query = parse_body(KeyListQuery, request.args.to_dict(), strict=False)
    search = KeySearch(query.q.strip(), query.state, query.page, query.per_page, query.include_deleted)
    keys, total = bulk.search_upstream_keys(db.session, search, utcnow())
    held = summary.held_counts(db.session, utcnow())
    return jsonify({"upstream_keys": [upstream_key_json(key, held) for key in keys], "total": total,
                    "page": query.page, "per_page": query.per_page})


def add_upstream_keys() -> tuple[Response, int]:
    """Add `{keys: [...]}` (up to 10,000): the valid ones not pooled yet are stored, deleted ones revived;
    duplicates and invalid keys (with the reason) are reported. 400 when not one key is valid."""
    body = read_body(AddKeysBody)
    report = bulk.import_upstream_keys(db.session, body.keys, runtime().secret_box, body.label.strip())
    if not report.added and not report.duplicates:
        raise ValidationFailed(fields={"keys": "; ".join(sorted({item.reason for item in report.invalid}))[:500]})
    audited("pool.add", "upstream_keys", None, import_summary(report), only_changes=False)
    db.session.commit()
    refresh_pool(report.added)
    held = summary.held_counts(db.session, utcnow())
    listed = [upstream_key_json(result.key, held) | {"created": True} for result in report.added]
    listed += [upstream_key_json(result.key, held) | {"created": False} for result in report.duplicates]
    return jsonify(import_summary(report) | {
        "invalid": [{"key": item.key, "reason": item.reason} for item in report.invalid],
        "upstream_keys": listed}), 201


def import_summary(report: bulk.ImportReport) -> dict[str, int]:
    return {"added": len(report.added), "duplicates": report.duplicate_count, "invalid_count": len(report.invalid)}


def bulk_upstream_keys() -> Response:
    """Enable, disable, delete or relabel many keys at once: `{action, ids, label?}`; unknown ids are listed."""
    body = read_body(BulkKeysBody)
    if body.action == "label" and body.label is None:
        raise ValidationFailed(fields={"label": "Give the new label (an empty string clears it)."})
    keys = bulk.find_upstream_keys(db.session, body.ids)
    changed = apply_bulk(keys, body.action, body.label or "")
    db.session.commit()
    found = {key.id for key in keys}
    return jsonify({"action": body.action, "changed": [key.id for key in changed],
                    "unchanged": sorted(found - {key.id for key in changed}),
                    "missing": [key_id for key_id in dict.fromkeys(body.ids) if key_id not in found]})


def check_upstream_keys() -> tuple[Response, int]:
    """Check `{ids}` (every pooled key without) in the background: 202 with the job to poll."""
    body = read_body(CheckKeysBody, allow_empty=True)
    job = start_pool_check(body.ids)
    return jsonify({"id": job.id, "state": job.state, "done": job.done, "total": job.total}), 202


def show_job(job_id: str) -> Response:
    """A background job's progress; its per-item results with `?results=1` (always once it is done)."""
    job = jobs.read_job(db.session, job_id, utcnow())
    wanted = request.args.get("results", "").lower() in ("1", "true", "yes") or job.state not in jobs.ACTIVE_STATES
    return jsonify(jobs.job_json(job, with_results=wanted))


def update_upstream_key(key_id: int) -> Response:
    """Enable or disable a key by hand, relabel it, or set its egress proxy (`proxy_url: null` clears it)."""
    body = read_body(PatchKeyBody)
    key = pool.find_upstream_key(db.session, key_id)
    before = auditing.pool_key(key)
    if "proxy_url" in body.model_fields_set:
        pool.set_upstream_key_proxy(key, body.proxy_url, runtime().secret_box)
    if body.state is not None:
        pool.set_upstream_key_state(db.session, key, body.state == "active")
    if body.label is not None:
        key.label = body.label.strip()
    audited_change("pool.update", f"upstream_key:{key.id}", before, auditing.pool_key(key))
    db.session.commit()
    if body.state is not None:
        runtime().health.set_enabled(key.id, body.state == "active")
    elif "proxy_url" in body.model_fields_set:
        runtime().health.refresh(force=True)
    return jsonify(upstream_key_json(key, summary.held_counts(db.session, utcnow())))


def delete_upstream_key(key_id: int) -> tuple[str, int]:
    """Take a key out of the pool for good (soft: its usage history keeps pointing at it)."""
    key = pool.find_upstream_key(db.session, key_id)
    before = auditing.pool_key(key)
    pool.delete_upstream_key(db.session, key)
    audited("pool.delete", f"upstream_key:{key.id}", before, auditing.pool_key(key))
    db.session.commit()
    runtime().health.refresh(force=True)
    return "", 204
