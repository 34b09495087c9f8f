"""The common path of every proxied request: authenticate, meter, forward with failover, respond.

Every request that gets past authentication is settled exactly once: a refusal or an
upstream failure at once, an answer after its last byte went out (the response's close
callback), so the client never waits on the ledger write.
"""

import json
from collections.abc import Callable

from flask import Response, g, request
from werkzeug.exceptions import HTTPException

from vault.errors import VaultError
from vault.extensions import db
from vault.meter import Meter
from vault.metering import NO_USAGE, ArrayUsageTap, OpenAIUsageStripper, SseUsageTap, from_body
from vault.proxy.dialects import normalize_model, stream_error_event
from vault.proxy.keys import Caller, authenticate, presented_vault_key
from vault.ratelimit import enforce_key_limit
from vault.runtime import VaultRuntime, runtime
from vault.upstream.client import UpstreamRequest, forwardable_headers, relayable_headers
from vault.upstream.failover import Answer, forward
from vault.upstream.relay import relay_stream


def authenticate_caller() -> Caller:
    """Check the Vault key before anything else is read or sent."""
    caller = authenticate(db.session, presented_vault_key(request))
    db.session.rollback()  # release the connection: a stream may hold this request for minutes
    return caller


def proxy(endpoint: str, build: Callable[[], UpstreamRequest]) -> Response:
    """Serve one proxied call: `build` reads the request into its upstream form."""
    caller = authenticate_caller()
    vault = runtime()
    meter = Meter(vault.session_factory, vault.prices, vault.hold_policy, caller.user_id, caller.api_key_id, endpoint,
                  request_id=g.request_id, observe=lambda entry: observe(vault, entry))
    try:
        limit = caller.rate_limit_rpm if caller.rate_limit_rpm is not None else vault.default_rpm
        enforce_key_limit(vault.limiter, caller.api_key_id, limit)
        upstream_request = build()
        meter.describe(upstream_request.model, upstream_request.streaming)
        meter.reserve(upstream_request.body)
        answer = forward(upstream_request, vault.upstream, vault.health, vault.max_retries)
    except VaultError as exc:
        meter.finish(exc.status, ending="refused" if exc.status < 500 else "failed", error=exc.message)
        raise
    except HTTPException as exc:  # e.g. 413 while reading the body
        meter.finish(exc.code or 400, ending="refused", error=exc.name)
        raise
    except Exception:
        meter.finish(500, ending="failed", error="internal error")
        raise
    return respond(answer, upstream_request, meter, vault)


def observe(vault: VaultRuntime, entry) -> None:
    """Count a finished request in the metrics."""
    first_byte = None if entry.first_byte_ms is None else entry.first_byte_ms / 1000
    vault.metrics.request_finished(entry.endpoint, entry.priced_model, entry.status, entry.total_ms / 1000,
                                   first_byte, entry.usage.prompt + entry.usage.tool_prompt, entry.usage.output)


def respond(answer: Answer, upstream_request: UpstreamRequest, meter: Meter, vault: VaultRuntime) -> Response:
    """The client's response; settlement runs when the response is closed."""
    headers = relayable_headers(answer.headers)
    key_id = answer.key.id
    if answer.response is None:
        meter.first_byte()
        response = Response(answer.body, status=answer.status, headers=headers)
        usage = from_body(answer.body) if answer.status == 200 else NO_USAGE
        response.call_on_close(lambda: meter.finish(answer.status, usage, key_id))
        return response
    sse = "text/event-stream" in answer.headers.get("Content-Type", "") or upstream_request.dialect == "openai"
    tap = SseUsageTap() if sse else ArrayUsageTap()
    stripper = OpenAIUsageStripper() if upstream_request.extras.get("strip_usage") else None
    ending = {"value": "completed"}

    def observe(piece: bytes) -> None:
        meter.first_byte()
        tap.feed(piece)

    def finished(how: str) -> None:
        ending["value"] = how

    events = relay_stream(answer, lambda: stream_error_event(upstream_request.dialect, sse), finished,
                          observe=observe, rewrite=stripper)
    response = Response(events, status=200, headers=headers | {"X-Accel-Buffering": "no", "Cache-Control": "no-cache"})
    response.call_on_close(lambda: meter.finish(200, tap.usage, key_id, ending["value"],
                                                None if ending["value"] == "completed" else ending["value"]))
    return response


def build_request(path: str, dialect: str, bearer_auth: bool, model: str = "", streaming: bool = False,
                  body: bytes | None = None, extras: dict | None = None) -> UpstreamRequest:
    """The upstream form of the current request, without the Vault key anywhere."""
    query = [(name, value) for name, value in request.args.items(multi=True) if name != "key"]
    return UpstreamRequest(
        method=request.method, path=path, query=query,
        headers=forwardable_headers(list(request.headers.items())),
        body=request.get_data(cache=True) if body is None else body,
        bearer_auth=bearer_auth, model=model, streaming=streaming, dialect=dialect, extras=extras or {},
    )


def json_object(body: bytes) -> dict | None:
    """The body as a JSON object, or None (malformed bodies are the upstream's to judge)."""
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return parsed if isinstance(parsed, dict) else None


def openai_request(path: str) -> UpstreamRequest:
    """An OpenAI-compatible request for the upstream's `/v1beta/openai/…` endpoint.

    A streamed chat that did not ask for usage gets it asked for (the Vault bills from it)
    and stripped again on the way back.
    """
    body = request.get_data(cache=True)
    payload = json_object(body) if request.method == "POST" else None
    if payload is None:
        return build_request(path, "openai", bearer_auth=True, body=body)
    streaming = payload.get("stream") is True
    options = payload.get("stream_options")
    wants_usage = isinstance(options, dict) and options.get("include_usage") is True
    extras = {}
    if streaming and not wants_usage:
        payload["stream_options"] = (options if isinstance(options, dict) else {}) | {"include_usage": True}
        body, extras = json.dumps(payload).encode(), {"strip_usage": True}
    return build_request(path, "openai", bearer_auth=True, model=normalize_model(payload.get("model")),
                         streaming=streaming, body=body, extras=extras)
