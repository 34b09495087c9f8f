"""Creating cached contents and moving their expiry: storage held first, charged for the time kept."""

import re
from dataclasses import replace
from datetime import timedelta

from flask import Response, current_app

from vault.access import Caller
from vault.billing.meter import Meter
from vault.clock import utcnow
from vault.errors import BadRequest, UpstreamFailed
from vault.extensions import db
from vault.inbound import encode_json
from vault.models.stored_resource import CACHE
from vault.proxy.resources.common import (
    allowed_fields,
    json_object,
    json_response,
    pinned,
    resource_request,
    upstream_error,
)
from vault.proxy.resources.records import settle_answer
from vault.proxy.routes import Call, checked_model
from vault.resources import registry, storage
from vault.resources.references import references
from vault.runtime import VaultRuntime
from vault.upstream.failover import forward, forward_pinned

DURATION = re.compile(r"(?P<seconds>[0-9]{1,10})(?:\.(?P<fraction>[0-9]{1,9}))?s")
CACHE_FIELDS = {"model": "model", "contents": "contents", "systemInstruction": "systemInstruction",
                "system_instruction": "systemInstruction", "tools": "tools", "toolConfig": "toolConfig",
                "tool_config": "toolConfig", "ttl": "ttl", "expireTime": "expireTime", "expire_time": "expireTime",
                "displayName": "displayName", "display_name": "displayName"}

EXPIRY_FIELDS = {"ttl": "ttl", "expireTime": "expireTime", "expire_time": "expireTime"}
DEFAULT_CACHE_TTL = 3600.0


def create_cache(call: Call, vault: VaultRuntime, caller: Caller, meter: Meter, payload: dict | None,
                 body_size: int) -> Response:
    """POST /{v}/cachedContents: made with the key holding the files it names (or any key), storage charged."""
    fields = allowed_fields(payload, CACHE_FIELDS, "a cached content")
    model = fields.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' is required, e.g. 'models/gemini-2.5-flash'.")
    fields["model"] = "models/" + checked_model(model.removeprefix("models/"))
    refs = references(fields)
    if refs.caches:
        raise BadRequest("A cached content cannot name another cached content.")
    upstream = resource_request(call, "POST", encode_json(fields, False))
    files = registry.owned(db.session, caller.user_id, refs.files, utcnow())
    worst = storage.worst_tokens(body_size, [row.size_bytes for row in files.values()],
                                 vault.prices.limits(fields["model"].removeprefix("models/"))[0])
    db.session.rollback()
    rate = current_app.config["VAULT_CACHE_STORAGE_PRICE"]
    meter.reserve_charge(storage.storage_nano(worst, ttl_seconds(fields), rate))
    if refs.files:
        key_id = registry.holding_key(db.session, caller.user_id, refs, utcnow())
        db.session.rollback()
        answer = forward_pinned(upstream, vault.upstream, vault.health, key_id,
                                registry.unavailable_message(refs.files[0]))
    else:
        answer = forward(upstream, vault.upstream, vault.health, vault.max_retries)
    if answer.status != 200:
        return upstream_error(call, meter, answer)
    resource = json_object(answer.body)
    name = resource.get("name")
    if not isinstance(name, str) or not name.startswith("cachedContents/"):
        raise UpstreamFailed("The upstream's answer names no cached content.")
    now = utcnow()
    row = registry.record(db.session, CACHE, resource, caller.user_id, caller.api_key_id, answer.key.id, now)
    created = registry.parse_time(resource.get("createTime")) or now  # Google's clock: its TTL, exactly
    charge = storage.storage_nano(row.token_count, storage.extension_seconds(None, row.expires_at, created),
                                  current_app.config["VAULT_CACHE_STORAGE_PRICE"])
    row.storage_charged_until = row.expires_at
    db.session.commit()
    meter.finish(200, upstream_key_id=answer.key.id, storage_nano=charge)
    return json_response(resource)


def patch_cache(call: Call, vault: VaultRuntime, caller: Caller, meter: Meter, payload: dict | None,
                _size: int) -> Response:
    """PATCH a cache's expiry (`updateMask=ttl` or `expireTime`); time past what is paid for is charged."""
    fields = allowed_fields(payload, EXPIRY_FIELDS, "a cached content update")
    if len(fields) != 1:
        raise BadRequest("Send the new 'ttl' (e.g. '600s') or 'expireTime', one of them.")
    ttl_seconds(fields)
    mask = dict(call.query).get("updateMask")
    field = next(iter(fields))
    if mask is not None and mask.replace("expire_time", "expireTime") != field:
        raise BadRequest(f"'updateMask' names '{mask}' but the body sets '{field}'.")
    call = replace(call, query=[("updateMask", field)])  # the SDK sends none: say what changes
    row = registry.find(db.session, caller.user_id, call.resource, utcnow())
    now = utcnow()
    wanted = now + timedelta(seconds=ttl_seconds(fields))
    meter.reserve_charge(storage.storage_nano(row.token_count, storage.extension_seconds(
        row.storage_charged_until, wanted, now), current_app.config["VAULT_CACHE_STORAGE_PRICE"]))
    answer = pinned(vault, row, resource_request(call, "PATCH", encode_json(fields, False)))
    if answer.status != 200:
        return settle_answer(call, meter, row, answer)
    before = row.storage_charged_until
    resource = json_object(answer.body)
    registry.refresh(row, resource)
    now = registry.parse_time(resource.get("updateTime")) or utcnow()
    charge = storage.storage_nano(row.token_count, storage.extension_seconds(before, row.expires_at, now),
                                  current_app.config["VAULT_CACHE_STORAGE_PRICE"])
    if row.expires_at is not None and (before is None or row.expires_at > before):
        row.storage_charged_until = row.expires_at
    return settle_answer(call, meter, row, answer, storage_nano=charge)


def ttl_seconds(fields: dict) -> float:
    """The storage time a cache body asks for: `ttl` ("300s"), `expireTime`, or Google's default hour."""
    if "ttl" in fields:
        value = fields["ttl"]
        match = DURATION.fullmatch(value) if isinstance(value, str) else None
        if not match:
            raise BadRequest("'ttl' must be a duration in seconds such as '3600s'.")
        return float(f"{match['seconds']}.{match['fraction'] or 0}")
    if "expireTime" in fields:
        moment = registry.parse_time(fields["expireTime"])
        if moment is None:
            raise BadRequest("'expireTime' must be an RFC 3339 time such as '2026-01-01T00:00:00Z'.")
        return max((moment - utcnow()).total_seconds(), 0.0)
    return DEFAULT_CACHE_TTL
