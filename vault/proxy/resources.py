"""Files, uploads and cached contents through the Vault: each user's own, pinned to the key that made them.

Listing answers from the Vault's own records (Google's list would show every user of the
same project). Reading, deleting and patching check ownership first -- anything else is
"not found" -- and then go out with the upstream key that holds the resource, never another.
Uploads are relayed piece by piece: the start answer's upload URL is replaced by a Vault URL
whose token is the credential (`vault.resources.uploads`); chunks are streamed to Google's
URL without ever being held whole. Only the fields the Vault understands are sent upstream.
"""

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta

import requests
from flask import Response, current_app, request
from sqlalchemy import select

from vault.access import Caller
from vault.billing.meter import Meter
from vault.clock import utcnow
from vault.errors import (
    BadRequest,
    LengthRequired,
    PayloadTooLarge,
    StorageQuotaExceeded,
    UpstreamFailed,
    VaultError,
)
from vault.extensions import db
from vault.inbound import body_pieces, encode_json, parse_json, read_body, require_json_type
from vault.models import ApiKey
from vault.models.stored_resource import CACHE, FILE
from vault.pool.classify import transport_failure
from vault.pool.rotator import NoUsableKey
from vault.proxy.routes import UPLOAD_CHUNK, Call, checked_model
from vault.proxy.translate import client_error_body, identification_headers, without_keys
from vault.ratelimit import enforce_key_limit
from vault.resources import multipart, registry, storage, uploads
from vault.resources.references import references
from vault.runtime import VaultRuntime
from vault.upstream.client import UpstreamRequest, read_limited
from vault.upstream.failover import Answer, forward, forward_pinned, give_up, pinned_wait, try_key

MIME_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}")
DURATION = re.compile(r"(?P<seconds>[0-9]{1,10})(?:\.(?P<fraction>[0-9]{1,9}))?s")
MULTIPART = re.compile(r"multipart/related;\s*boundary=(?P<quote>\"?)(?P<boundary>[A-Za-z0-9'()+_,./:=?-]{1,70})"
                       r"(?P=quote)", re.IGNORECASE)
FILE_FIELDS = {"displayName": "displayName", "display_name": "displayName",
               "mimeType": "mimeType", "mime_type": "mimeType"}
CACHE_FIELDS = {"model": "model", "contents": "contents", "systemInstruction": "systemInstruction",
                "system_instruction": "systemInstruction", "tools": "tools", "toolConfig": "toolConfig",
                "tool_config": "toolConfig", "ttl": "ttl", "expireTime": "expireTime", "expire_time": "expireTime",
                "displayName": "displayName", "display_name": "displayName"}
EXPIRY_FIELDS = {"ttl": "ttl", "expireTime": "expireTime", "expire_time": "expireTime"}
DEFAULT_CACHE_TTL = 3600.0
BYTE_COUNT = re.compile(r"[0-9]{1,15}")
UPLOAD_COMMANDS = ({"upload"}, {"upload", "finalize"}, {"finalize"}, {"query"}, {"cancel"})
COMMAND_ORDER = ("upload", "finalize", "query", "cancel")
UPLOAD_HEADERS = ("X-Goog-Upload-Status", "X-Goog-Upload-Size-Received", "X-Goog-Upload-Chunk-Granularity")
JSON_TYPE = "application/json; charset=UTF-8"
# What a 429 on these calls cools, in place of a Gemini model: only calls of the same kind, on that
# key -- never generation, and a full project (uploads refused) can still read and delete its files.
SLOTS = {"files": "files", "cachedContents": "cachedContents", "upload": "files.upload"}
UPLOAD_SLOT = SLOTS["upload"]


def serve_resource(call: Call, vault: VaultRuntime, caller: Caller, meter: Meter, payload: dict | None,
                   body_size: int) -> Response:
    """A files, cachedContents or upload-start call of an authenticated caller (metered by `meter`)."""
    handler = HANDLERS[call.action.name]
    return handler(call, vault, caller, meter, payload, body_size)


# ----------------------------------------------------------------------------- listing and reading

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


def gone(answer: Answer, row) -> bool:
    """Whether Google says the resource no longer exists: a 404, or a 403 naming it as missing.

    Any other 403 (a restriction on the key, say) is relayed and the record kept.
    """
    if answer.status == 404:
        return True
    text = answer.body.decode("utf-8", "replace").lower()
    return answer.status == 403 and (row.name.partition("/")[2] in text or "not exist" in text or "not found" in text)


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


# ----------------------------------------------------------------------------- cached contents

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
    ttl_seconds(fields)  # refuse a malformed TTL before anything is sent
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


# ----------------------------------------------------------------------------- uploads

def start_upload(call: Call, vault: VaultRuntime, caller: Caller, meter: Meter, *_ignored) -> Response:
    """POST /upload/{v}/files: a resumable upload's start, or a whole multipart upload."""
    if dict(call.query).get("uploadType") == "multipart":
        return multipart_upload(call, vault, caller, meter)
    if request.headers.get("X-Goog-Upload-Protocol", "").lower() != "resumable" \
            or request.headers.get("X-Goog-Upload-Command", "").lower() != "start":
        raise BadRequest("Start an upload with 'X-Goog-Upload-Protocol: resumable' and "
                         "'X-Goog-Upload-Command: start', or send it whole with '?uploadType=multipart'.")
    declared = declared_size(request.headers.get("X-Goog-Upload-Header-Content-Length"))
    mime_type = request.headers.get("X-Goog-Upload-Header-Content-Type", "")
    if mime_type and not MIME_TYPE.fullmatch(mime_type):
        raise BadRequest("'X-Goog-Upload-Header-Content-Type' must be a MIME type such as 'application/pdf'.")
    check_size(declared)
    upstream = start_request(call, declared, mime_type, upload_metadata())
    started = reserve_space(caller, declared, mime_type)
    try:
        answer = forward(upstream, vault.upstream, vault.health, vault.max_retries)
        upstream_url = started_url(vault, answer)
    except Exception:
        db.session.rollback()
        uploads.finish(db.session, started.session_id, utcnow())
        raise
    if upstream_url is None:
        uploads.finish(db.session, started.session_id, utcnow())
        return upstream_error(call, meter, answer)
    uploads.attach(db.session, started.session_id, answer.key.id, vault.secret_box.encrypt(upstream_url))
    meter.finish(200, upstream_key_id=answer.key.id)
    return start_answer(call, started, answer)


def start_request(call: Call, declared: int, mime_type: str, metadata: dict) -> UpstreamRequest:
    """The start as Google gets it: the upload headers the Vault checked and the metadata it kept."""
    headers = identification_headers(tuple(request.headers.items())) | {
        "Content-Type": "application/json", "X-Goog-Upload-Protocol": "resumable",
        "X-Goog-Upload-Command": "start", "X-Goog-Upload-Header-Content-Length": str(declared)}
    if mime_type:
        headers["X-Goog-Upload-Header-Content-Type"] = mime_type
    return UpstreamRequest("POST", call.upstream_path, [], headers, encode_json(metadata, False), False,
                           UPLOAD_SLOT, False, "google", {"empty_ok": True})


def started_url(vault: VaultRuntime, answer: Answer) -> str | None:
    """Google's upload URL from a start's answer; None if the start was refused (a client error)."""
    if answer.status != 200:
        return None
    upstream_url = header(answer.headers, "X-Goog-Upload-URL")
    if not upstream_url or not vault.upstream.upstream_url(upstream_url):
        raise UpstreamFailed("The upstream did not answer the upload's start with an upload URL.")
    return upstream_url


def start_answer(call: Call, started: uploads.StartedUpload, answer: Answer) -> Response:
    """The client's start answer: the Vault's upload URL in place of Google's, and nothing else of Google's."""
    response = Response(b"", status=200)
    response.headers["X-Goog-Upload-Status"] = "active"
    response.headers["X-Goog-Upload-URL"] = (f"{public_base()}/upload/{call.version}/files"
                                             f"?upload_id={started.token}&upload_protocol=resumable")
    granularity = byte_count(header(answer.headers, "X-Goog-Upload-Chunk-Granularity"))
    if granularity:
        response.headers["X-Goog-Upload-Chunk-Granularity"] = str(granularity)
    return response


def upload_chunk(call: Call, vault: VaultRuntime) -> Response:
    """POST to a Vault upload URL: no API key, the token is the credential; relayed without buffering.

    Every refusal says `X-Goog-Upload-Status: final`, so the SDK stops and raises instead of retrying.
    """
    try:
        return relay_upload_request(call, vault)
    except VaultError as exc:
        exc.headers.setdefault("X-Goog-Upload-Status", "final")
        raise


def relay_upload_request(call: Call, vault: VaultRuntime) -> Response:
    """Check the command and the token, lease the upload, check the chunk, relay; on failure, settle.

    A chunk refused before its first byte went out leaves Google's upload as it was; one that
    failed on the way is reconciled with Google, which may hold part of it.
    """
    commands = upload_commands(request.headers.get("X-Goog-Upload-Command", ""))
    row = uploads.claim(db.session, dict(call.query).get("upload_id", ""), utcnow())
    meter = Meter(vault.books, vault.prices, vault.hold_policy, row.user_id, row.api_key_id, UPLOAD_CHUNK.name,
                  client_request_id=None)
    relaying = False
    try:
        admit_chunk(vault, row)
        outgoing = chunk_request(row, commands)
        relaying = True
        return relay_chunk(vault, row, commands, outgoing, meter)
    except Exception as exc:
        db.session.rollback()
        held = None
        if relaying and "upload" in commands:
            held = query_received(vault, vault.secret_box.decrypt(row.upstream_url_encrypted))
        uploads.release(db.session, row.id, held, None)
        status = exc.status if isinstance(exc, VaultError) else 500
        meter.finish(status, upstream_key_id=row.upstream_key_id, ending="refused" if status < 500 else "failed",
                     error=exc.message if isinstance(exc, VaultError) else "internal error")
        raise


def admit_chunk(vault: VaultRuntime, row) -> None:
    """The Vault key's rate limit counts upload requests too; the key holding the upload must still serve."""
    limit = db.session.scalar(select(ApiKey.rate_limit_rpm).where(ApiKey.id == row.api_key_id))
    db.session.rollback()
    enforce_key_limit(vault.limiter, row.api_key_id, vault.default_rpm if limit is None else limit)
    unavailable = "The upstream key holding this upload is out of the pool; start the upload again."
    key_id = registry.usable_key(db.session, row.upstream_key_id, "this upload")
    db.session.rollback()
    try:
        vault.health.pick_key(key_id, UPLOAD_SLOT)
    except NoUsableKey as exc:
        raise pinned_wait(exc, unavailable) from None


def upload_commands(raw: str) -> set[str]:
    """The commands of a request on an upload URL: one of the combinations Google takes, or `BadRequest`."""
    commands = {part.strip().lower() for part in raw.split(",")} - {""}
    if commands not in UPLOAD_COMMANDS:
        raise BadRequest("'X-Goog-Upload-Command' must be 'upload', 'upload, finalize', 'finalize', 'query' "
                         "or 'cancel'.")
    return commands


@dataclass(frozen=True)
class Outgoing:
    """What a request on an upload URL sends to Google's: its headers and, for a chunk, its bytes as they arrive."""

    headers: dict[str, str]
    body: Iterator[bytes] | None = None
    length: int = 0


def chunk_request(row, commands: set[str]) -> Outgoing:
    """The upstream request for `commands`, checked (`BadRequest`, `LengthRequired`) before a byte goes out."""
    headers = {"X-Goog-Upload-Command": ", ".join(c for c in COMMAND_ORDER if c in commands)}
    if "upload" not in commands:
        if request.content_length or "chunked" in request.headers.get("Transfer-Encoding", "").lower():
            raise BadRequest("Only an 'upload' command carries bytes.")
        return Outgoing(headers)
    length = content_length()
    offset = declared_size(request.headers.get("X-Goog-Upload-Offset"), "X-Goog-Upload-Offset")
    uploads.check_chunk(row, offset, length, current_app.config["VAULT_MAX_UPLOAD_BYTES"])
    headers |= {"X-Goog-Upload-Offset": str(offset), "Content-Length": str(length)}
    return Outgoing(headers, body_pieces(request, length, current_app.config["VAULT_BODY_TIMEOUT_SECONDS"]), length)


def relay_chunk(vault: VaultRuntime, row, commands: set[str], outgoing: Outgoing, meter: Meter) -> Response:
    """Send one chunk (or a query / cancel) to Google's upload URL and answer as Google does."""
    url = vault.secret_box.decrypt(row.upstream_url_encrypted)
    try:
        response = vault.upstream.send_upload(url, outgoing.headers, outgoing.body)
        answer_body = read_limited(response)
        response.close()
    except requests.RequestException:
        raise UpstreamFailed("The upstream did not take this chunk; ask with 'X-Goog-Upload-Command: query' "
                             "how much it holds, then resume.") from None
    status = header(response.headers, "X-Goog-Upload-Status") or ""
    received = row.received_bytes + outgoing.length if response.status_code == 200 and "upload" in commands else None
    if response.status_code == 200 and "query" in commands:
        received = byte_count(header(response.headers, "X-Goog-Upload-Size-Received"))
    if response.status_code != 200:
        dead = status == "final" or response.status_code == 404
        uploads.release(db.session, row.id, None if dead else query_received(vault, url), utcnow() if dead else None)
        meter.finish(response.status_code, upstream_key_id=row.upstream_key_id, ending="refused",
                     error=f"upstream {response.status_code}")
        error = client_error_body(response.status_code, answer_body, "google")
        reply = json_response(error, response.status_code if response.status_code < 500 else 502)
        reply.headers["X-Goog-Upload-Status"] = status or "final"
        return reply
    finished = utcnow() if status in ("final", "cancelled") or "cancel" in commands else None
    out = answer_body
    if status == "final":
        out = record_upload(row, answer_body)
    uploads.release(db.session, row.id, received, finished)
    meter.finish(200, upstream_key_id=row.upstream_key_id)
    reply = Response(out, status=200, content_type=JSON_TYPE if out else None)
    for name in UPLOAD_HEADERS:
        value = header(response.headers, name)
        if value and name != "X-Goog-Upload-Chunk-Granularity":
            reply.headers[name] = value
    return reply


def record_upload(row, answer_body: bytes) -> bytes:
    """Record the file a finalized upload made, owned by the upload's user and key."""
    wrapper = json_object(answer_body)
    resource = wrapper.get("file") if isinstance(wrapper.get("file"), dict) else None
    if resource is None or not str(resource.get("name", "")).startswith("files/"):
        raise UpstreamFailed("The upstream finalized the upload without naming a file.")
    registry.record(db.session, FILE, resource, row.user_id, row.api_key_id, row.upstream_key_id, utcnow())
    db.session.commit()
    return json.dumps({"file": resource}).encode()


def multipart_upload(call: Call, vault: VaultRuntime, caller: Caller, meter: Meter) -> Response:
    """POST /upload/{v}/files?uploadType=multipart: metadata and bytes in one body, streamed to one key.

    The body's size holds the caller's space while it streams, as a resumable upload's declared size does.
    """
    content_type = request.headers.get("Content-Type", "").strip()
    boundary = MULTIPART.fullmatch(content_type)
    if not boundary:
        raise BadRequest("A multipart upload's Content-Type must be 'multipart/related; boundary=…'.")
    length = content_length()
    check_size(length)
    held = reserve_space(caller, length)
    try:
        return send_multipart(call, vault, caller, meter, content_type, boundary["boundary"], length)
    finally:
        db.session.rollback()
        uploads.finish(db.session, held.session_id, utcnow())  # the file, if one was made, counts from now on


def send_multipart(call: Call, vault: VaultRuntime, caller: Caller, meter: Meter, content_type: str,
                   boundary: str, length: int) -> Response:
    """Stream a multipart body to one key (it can be sent once: no failover) and record the file it made.

    Its metadata part is rebuilt from the fields the Vault allows (a caller cannot name the file).
    """
    pieces = body_pieces(request, length, current_app.config["VAULT_BODY_TIMEOUT_SECONDS"])
    body = multipart.rewrite(pieces, length, boundary, clean_metadata)
    headers = identification_headers(tuple(request.headers.items())) | {
        "Content-Type": content_type, "Content-Length": str(body.length)}
    upstream = UpstreamRequest("POST", call.upstream_path, [("uploadType", "multipart")], headers, body.pieces,
                               False, UPLOAD_SLOT, False, "google")
    try:
        key = vault.health.pick(UPLOAD_SLOT, set())
    except NoUsableKey as exc:
        raise give_up([], exc) from None
    answer, outcome = try_key(upstream, vault.upstream, key)
    vault.health.record(key, UPLOAD_SLOT, outcome)
    if answer is None:
        raise give_up([outcome if outcome else transport_failure("upstream failed")])
    if answer.status != 200:
        return upstream_error(call, meter, answer)
    wrapper = json_object(answer.body)
    resource = wrapper.get("file") if isinstance(wrapper.get("file"), dict) else None
    if resource is None or not str(resource.get("name", "")).startswith("files/"):
        raise UpstreamFailed("The upstream's answer names no file.")
    registry.record(db.session, FILE, resource, caller.user_id, caller.api_key_id, key.id, utcnow())
    db.session.commit()
    meter.finish(200, upstream_key_id=key.id)
    return json_response({"file": resource})


def check_size(size: int) -> None:
    """413 if `size` bytes exceed the upload limit."""
    limit = current_app.config["VAULT_MAX_UPLOAD_BYTES"]
    if size > limit:
        raise PayloadTooLarge(f"Files larger than {limit} bytes cannot be uploaded.")


def reserve_space(caller: Caller, size: int, mime_type: str = "") -> uploads.StartedUpload:
    """Open an upload holding `size` bytes of the caller's storage quota; 413 (nothing held) past the quota.

    The upload is recorded before the quota is summed: two uploads started at once each count
    the other, so together they can never pass it (at worst both are refused).
    """
    started = uploads.open_session(db.session, user_id=caller.user_id, api_key_id=caller.api_key_id,
                                   declared_bytes=size, mime_type=mime_type, now=utcnow(),
                                   lifetime_seconds=current_app.config["VAULT_UPLOAD_SESSION_SECONDS"])
    quota = current_app.config["VAULT_USER_STORAGE_BYTES"]
    used = registry.storage_used(db.session, caller.user_id, utcnow())
    db.session.rollback()
    if used > quota:
        uploads.finish(db.session, started.session_id, utcnow())
        raise StorageQuotaExceeded(f"This upload would take your files to {used} bytes; your storage "
                                   f"quota is {quota} bytes. Delete files you no longer need.")
    return started


def upload_metadata() -> dict:
    """The start request's `{"file": {...}}`, with only a display name and MIME type kept."""
    body = read_body(request)
    if not body.strip():
        return {}
    require_json_type(request)
    return clean_metadata(parse_json(body))


def clean_metadata(payload: object) -> dict:
    """`{"file": {...}}` metadata (a start's body, a multipart's first part) with only a display name
    and a MIME type kept; `BadRequest` for anything else it sets."""
    if not isinstance(payload, dict):
        raise BadRequest("The upload's metadata must be a JSON object.")
    unknown = set(payload) - {"file"}
    if unknown:
        raise BadRequest(f"Unknown field '{sorted(unknown)[0][:64]}' in the upload's start.")
    described = payload.get("file") or {}
    if not isinstance(described, dict):
        raise BadRequest("'file' must be an object.")
    kept = {}
    for name, value in described.items():
        if name in ("sizeBytes", "size_bytes", "name"):
            continue  # the size travels in X-Goog-Upload-Header-Content-Length; Google names the file
        canonical = FILE_FIELDS.get(name)
        if canonical is None:
            raise BadRequest(f"Unknown field 'file.{name[:64]}' in the upload's start.")
        if not isinstance(value, str) or len(value) > 512:
            raise BadRequest(f"'file.{name}' must be a string of at most 512 characters.")
        if canonical == "mimeType" and not MIME_TYPE.fullmatch(value):
            raise BadRequest("'file.mimeType' must be a MIME type such as 'application/pdf'.")
        kept[canonical] = value
    return {"file": kept} if kept else {}


def query_received(vault: VaultRuntime, url: str) -> int | None:
    """How many bytes Google holds of an upload (after a chunk failed), or None if it cannot say."""
    try:
        response = vault.upstream.send_upload(url, {"X-Goog-Upload-Command": "query", "Content-Length": "0"}, None)
        response.close()
    except requests.RequestException:
        return None
    return byte_count(header(response.headers, "X-Goog-Upload-Size-Received")) if response.status_code == 200 else None


# ----------------------------------------------------------------------------- helpers

def pinned(vault: VaultRuntime, row, upstream: UpstreamRequest) -> Answer:
    """Send `upstream` with the key that holds `row` (checked still in the pool)."""
    key_id = registry.usable_key(db.session, row.upstream_key_id, row.name)
    db.session.rollback()
    return forward_pinned(upstream, vault.upstream, vault.health, key_id, registry.unavailable_message(row.name))


def resource_request(call: Call, method: str, body: bytes = b"") -> UpstreamRequest:
    """The upstream request for a files / cachedContents call, from the allow-listed parts only."""
    headers = identification_headers(tuple(request.headers.items()))
    if body:
        headers["Content-Type"] = "application/json"
    return UpstreamRequest(method, call.upstream_path, list(call.query), headers, body, False,
                           SLOTS[call.action.kind], False, "google", {"empty_ok": method == "DELETE"})


def allowed_fields(payload: dict | None, allowed: dict[str, str], what: str) -> dict:
    """`payload` with each field in its canonical spelling; `BadRequest` for a field not understood."""
    if not isinstance(payload, dict):
        raise BadRequest("The request body must be a JSON object.")
    kept: dict = {}
    for name, value in payload.items():
        canonical = allowed.get(name)
        if canonical is None:
            raise BadRequest(f"Unknown field '{str(name)[:64]}' in {what}.")
        if canonical in kept:
            raise BadRequest(f"'{canonical}' is given twice.")
        kept[canonical] = value
    return kept


def declared_size(value: str | None, name: str = "X-Goog-Upload-Header-Content-Length") -> int:
    """A non-negative byte count from a header; `BadRequest` if missing or not a plain number."""
    size = byte_count(value)
    if size is None:
        raise BadRequest(f"'{name}' is required and must be a number of bytes.")
    return size


def byte_count(value: str | None) -> int | None:
    """A plain count of bytes (ASCII digits: `str.isdigit` also takes '²', which `int` refuses), or None."""
    value = (value or "").strip(" \t")
    return int(value) if BYTE_COUNT.fullmatch(value) else None


def content_length() -> int:
    """The body's announced length: uploads must say how long they are (411 otherwise)."""
    if "chunked" in request.headers.get("Transfer-Encoding", "").lower() or request.content_length is None:
        raise LengthRequired("Send upload bytes with a Content-Length header (not chunked).")
    return request.content_length


def header(headers: dict, name: str) -> str | None:
    """A header of an upstream answer, whatever its case."""
    lowered = name.lower()
    return next((value for key, value in headers.items() if key.lower() == lowered), None)


def json_object(body: bytes) -> dict:
    """An upstream answer's JSON object; 502 if it is not one."""
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise UpstreamFailed("The upstream's answer was not a JSON object.")
    return value


def json_response(body: dict, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type=JSON_TYPE)


def upstream_error(call: Call, meter: Meter, answer: Answer) -> Response:
    """An upstream client error, in Google's envelope with every key masked; settled as refused."""
    meter.finish(answer.status, upstream_key_id=answer.key.id, ending="refused", error=f"upstream {answer.status}")
    error = client_error_body(answer.status, without_keys(answer.body, answer.key.secret), "google",
                              answer.key.secret)
    return json_response(error, answer.status)


def public_base() -> str:
    """Where clients reach the Vault: `VAULT_PUBLIC_URL`, else this request's own host."""
    configured = current_app.config.get("VAULT_PUBLIC_URL")
    return (configured or request.host_url).rstrip("/")


HANDLERS = {
    "files.list": list_resources, "files.get": get_resource, "files.delete": delete_resource,
    "cachedContents.list": list_resources, "cachedContents.get": get_resource,
    "cachedContents.delete": delete_resource, "cachedContents.create": create_cache,
    "cachedContents.patch": patch_cache, "files.upload": start_upload,
}
