"""Resumable and multipart uploads relayed to Google piece by piece, behind the Vault's own upload URL."""

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import requests
from flask import Response, current_app, request

from vault.access import Caller
from vault.billing.meter import Meter
from vault.clock import utcnow
from vault.errors import BadRequest, PayloadTooLarge, StorageQuotaExceeded, UpstreamFailed, VaultError
from vault.extensions import db
from vault.inbound import body_pieces, encode_json, parse_json, read_body, require_json_type
from vault.models import ApiKey
from vault.models.stored_resource import FILE
from vault.policies.door import check_door
from vault.policies.rules import NO_POLICY
from vault.policies.standing import policy_of
from vault.pool.classify import transport_failure
from vault.pool.rotator import NoUsableKey
from vault.proxy.resources.common import (
    JSON_TYPE,
    MIME_TYPE,
    UPLOAD_SLOT,
    byte_count,
    content_length,
    declared_size,
    header,
    json_object,
    json_response,
    public_base,
    upstream_error,
)
from vault.proxy.routes import UPLOAD_CHUNK, Call
from vault.proxy.translate import client_error_body, identification_headers
from vault.ratelimit import enforce_key_limit
from vault.resources import multipart, registry, uploads
from vault.runtime import VaultRuntime
from vault.upstream.client import UpstreamRequest, read_limited
from vault.upstream.failover import Answer, forward, give_up, pinned_wait, try_key

MULTIPART = re.compile(r"multipart/related;\s*boundary=(?P<quote>\"?)(?P<boundary>[A-Za-z0-9'()+_,./:=?-]{1,70})"
                       r"(?P=quote)", re.IGNORECASE)
FILE_FIELDS = {"displayName": "displayName", "display_name": "displayName",
               "mimeType": "mimeType", "mime_type": "mimeType"}

UPLOAD_COMMANDS = ({"upload"}, {"upload", "finalize"}, {"finalize"}, {"query"}, {"cancel"})
COMMAND_ORDER = ("upload", "finalize", "query", "cancel")

UPLOAD_HEADERS = ("X-Goog-Upload-Status", "X-Goog-Upload-Size-Received", "X-Goog-Upload-Chunk-Granularity")


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
            held = query_received(vault, vault.secret_box.decrypt(row.upstream_url_encrypted), row.upstream_key_id)
        uploads.release(db.session, row.id, held, None)
        status = exc.status if isinstance(exc, VaultError) else 500
        meter.finish(status, upstream_key_id=row.upstream_key_id, ending="refused" if status < 500 else "failed",
                     error=exc.message if isinstance(exc, VaultError) else "internal error")
        raise


def admit_chunk(vault: VaultRuntime, row) -> None:
    """The Vault key's policy applies to upload requests too (expiry, addresses, requests per
    minute); the key holding the upload must still serve."""
    key = db.session.get(ApiKey, row.api_key_id)
    policy = policy_of(key) if key is not None else NO_POLICY
    db.session.rollback()
    check_door(policy, utcnow(), request.remote_addr or "")
    limit = policy.rate_limit_rpm
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
        response = vault.upstream.send_upload(url, outgoing.headers, outgoing.body,
                                              vault.health.proxy_for(row.upstream_key_id))
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
        held = None if dead else query_received(vault, url, row.upstream_key_id)
        uploads.release(db.session, row.id, held, utcnow() if dead else None)
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


def query_received(vault: VaultRuntime, url: str, key_id: int) -> int | None:
    """How many bytes Google holds of an upload (after a chunk failed), or None if it cannot say."""
    try:
        response = vault.upstream.send_upload(url, {"X-Goog-Upload-Command": "query", "Content-Length": "0"}, None,
                                              vault.health.proxy_for(key_id))
        response.close()
    except requests.RequestException:
        return None
    return byte_count(header(response.headers, "X-Goog-Upload-Size-Received")) if response.status_code == 200 else None
