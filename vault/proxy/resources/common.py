"""What the files, caches and upload handlers share: pinned sends, allow-listed fields, answers."""

import json
import re

from flask import Response, current_app, request

from vault.billing.meter import Meter
from vault.errors import BadRequest, LengthRequired, UpstreamFailed
from vault.extensions import db
from vault.proxy.routes import Call
from vault.proxy.translate import client_error_body, identification_headers, without_keys
from vault.resources import registry
from vault.runtime import VaultRuntime
from vault.upstream.client import UpstreamRequest
from vault.upstream.failover import Answer, forward_pinned

MIME_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}")
BYTE_COUNT = re.compile(r"[0-9]{1,15}")

JSON_TYPE = "application/json; charset=UTF-8"
# What a 429 on these calls cools, in place of a Gemini model: only calls of the same kind, on that
# key -- never generation, and a full project (uploads refused) can still read and delete its files.
SLOTS = {"files": "files", "cachedContents": "cachedContents", "upload": "files.upload"}
UPLOAD_SLOT = SLOTS["upload"]


def gone(answer: Answer, row) -> bool:
    """Whether Google says the resource no longer exists: a 404, or a 403 naming it as missing.

    Any other 403 (a restriction on the key, say) is relayed and the record kept.
    """
    if answer.status == 404:
        return True
    text = answer.body.decode("utf-8", "replace").lower()
    return answer.status == 403 and (row.name.partition("/")[2] in text or "not exist" in text or "not found" in text)


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
