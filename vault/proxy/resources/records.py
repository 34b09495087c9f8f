"""Listing, reading and deleting the caller's own files and caches."""


from flask import Response

from vault.access import Caller
from vault.billing.meter import Meter
from vault.clock import utcnow
from vault.errors import UpstreamFailed
from vault.extensions import db
from vault.models.stored_resource import CACHE, FILE
from vault.proxy.resources.common import gone, json_object, json_response, pinned, resource_request, upstream_error
from vault.proxy.routes import Call
from vault.resources import registry
from vault.runtime import VaultRuntime
from vault.upstream.failover import Answer


def list_resources(call: Call, vault: VaultRuntime, caller: Caller, meter: Meter, *_ignored) -> Response:
    """GET /{v}/files or /{v}/cachedContents: a page of the caller's own."""
    kind = FILE if call.action.kind == "files" else CACHE
    query = dict(call.query)
    size = int(query["pageSize"]) if "pageSize" in query else None
    rows, token = registry.page(db.session, caller.user_id, kind, size, query.get("pageToken"), utcnow())
    body: dict = {}
    if rows:
        body[call.action.kind] = [row.resource for row in rows]
    if token:
        body["nextPageToken"] = token
    db.session.rollback()
    meter.finish(200)
    return json_response(body)


def get_resource(call: Call, vault: VaultRuntime, caller: Caller, meter: Meter, *_ignored) -> Response:
    """GET /{v}/files/{id} or /{v}/cachedContents/{id}: fresh from the key that holds it."""
    row = registry.find(db.session, caller.user_id, call.resource, utcnow())
    answer = pinned(vault, row, resource_request(call, "GET"))
    return settle_answer(call, meter, row, answer)


def delete_resource(call: Call, vault: VaultRuntime, caller: Caller, meter: Meter, *_ignored) -> Response:
    """DELETE a file or cache the caller owns, upstream and in the Vault's record."""
    row = registry.find(db.session, caller.user_id, call.resource, utcnow())
    answer = pinned(vault, row, resource_request(call, "DELETE"))
    if answer.status == 200 or gone(answer, row):  # deleted now, or already gone upstream
        registry.mark_deleted(row, utcnow())
        db.session.commit()
        meter.finish(200, upstream_key_id=answer.key.id)
        return json_response({})
    return upstream_error(call, meter, answer)


def settle_answer(call: Call, meter: Meter, row, answer: Answer, storage_nano: int | None = None) -> Response:
    """Relay a pinned answer about `row`, refreshing the record (or retiring it if Google lost it)."""
    if answer.status == 200:
        resource = json_object(answer.body)
        if resource.get("name") != row.name:
            raise UpstreamFailed("The upstream answered about another resource.")
        registry.refresh(row, resource)
        db.session.commit()
        meter.finish(200, upstream_key_id=answer.key.id, storage_nano=storage_nano)
        return json_response(resource)
    if gone(answer, row):  # expired or deleted upstream: it no longer exists for anyone
        registry.mark_deleted(row, utcnow())
        db.session.commit()
        raise registry.not_found(row.name)
    return upstream_error(call, meter, answer)
