"""The common path of every proxied request: authenticate, forward with failover, respond."""

import json
import logging
from datetime import UTC, datetime

from flask import Response, request
from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session

from vault.extensions import db
from vault.models import ApiKey
from vault.proxy.dialects import normalize_model, stream_error_event
from vault.proxy.keys import Caller, authenticate, presented_vault_key
from vault.runtime import runtime
from vault.upstream.client import UpstreamRequest, forwardable_headers, relayable_headers
from vault.upstream.failover import Answer, forward
from vault.upstream.health import record_use
from vault.upstream.relay import relay_stream

log = logging.getLogger(__name__)


def authenticate_caller() -> Caller:
    """Check the Vault key before anything else is read or sent."""
    caller = authenticate(db.session, presented_vault_key(request))
    db.session.rollback()  # release the connection: a stream may hold this request for minutes
    return caller


def build_request(path: str, dialect: str, bearer_auth: bool, model: str = "", streaming: bool = False,
                  body: bytes | None = None) -> UpstreamRequest:
    """The upstream form of the current request, without the Vault key anywhere."""
    query = [(name, value) for name, value in request.args.items(multi=True) if name != "key"]
    return UpstreamRequest(
        method=request.method, path=path, query=query,
        headers=forwardable_headers(list(request.headers.items())),
        body=request.get_data(cache=True) if body is None else body,
        bearer_auth=bearer_auth, model=model, streaming=streaming, dialect=dialect,
    )


def json_field(body: bytes, name: str) -> object:
    """`body[name]` if the body is a JSON object, else None (the upstream judges bad JSON)."""
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return parsed.get(name) if isinstance(parsed, dict) else None


def openai_request(path: str) -> UpstreamRequest:
    """An OpenAI-compatible request for the upstream's `/v1beta/openai/…` endpoint."""
    body = request.get_data(cache=True)
    model = normalize_model(json_field(body, "model")) if request.method == "POST" else ""
    streaming = json_field(body, "stream") is True
    return build_request(path, "openai", bearer_auth=True, model=model, streaming=streaming, body=body)


def serve(caller: Caller, upstream_request: UpstreamRequest) -> Response:
    """Forward through the pool and answer the client (streamed or whole)."""
    vault = runtime()
    answer = forward(upstream_request, vault.upstream, vault.health, vault.max_retries)
    finish = usage_recorder(vault.session_factory, caller, answer.key.id)
    headers = relayable_headers(answer.headers)
    if answer.response is None:
        finish("completed")
        return Response(answer.body, status=answer.status, headers=headers)
    sse = "text/event-stream" in answer.headers.get("Content-Type", "") or upstream_request.dialect == "openai"
    events = relay_stream(answer, lambda: stream_error_event(upstream_request.dialect, sse), finish)
    headers |= {"X-Accel-Buffering": "no", "Cache-Control": "no-cache"}
    return Response(events, status=200, headers=headers, direct_passthrough=True)


def usage_recorder(session_factory, caller: Caller, upstream_key_id: int):
    """A callback for the end of a request: counts the use of both keys in one transaction."""

    def finish(ending: str) -> None:
        try:
            with session_factory() as session:
                moment = datetime.now(UTC)
                record_key_use(session, caller.api_key_id, moment)
                record_use(session, upstream_key_id, moment)
                session.commit()
        except Exception:  # a failed bookkeeping write must not break the client's answer
            log.exception("could not record the use of Vault key id %s (%s)", caller.api_key_id, ending)

    return finish


KEY_USED = (
    update(ApiKey.__table__).where(ApiKey.__table__.c.id == bindparam("api_key_id"))
    .values(request_count=ApiKey.__table__.c.request_count + 1, last_used_at=bindparam("moment"))
)


def record_key_use(session: Session, api_key_id: int, moment: datetime) -> None:
    """Count one request on the Vault key and stamp its last use."""
    session.execute(KEY_USED, {"api_key_id": api_key_id, "moment": moment})


__all__ = ["Answer", "authenticate_caller", "build_request", "openai_request", "serve"]
