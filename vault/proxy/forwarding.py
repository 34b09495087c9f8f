"""The common path of every proxied request: resolve, authenticate, meter, forward with failover, respond.

The view (`serve`) is the only place that reads Flask's request: it resolves the path
against the allow-list (no upstream call for anything else), checks the Vault key, reads
the body within its limits, and hands an explicit `Inbound` value to plain code.

Every request that gets past authentication is settled exactly once: a refusal or an
upstream failure at once, an answer after its last byte went out (the response's close
callback), so the client never waits on the ledger write.
"""

import json

from flask import Response, g, request
from werkzeug.exceptions import HTTPException

from vault.billing.meter import Meter
from vault.billing.usage import NO_USAGE, ArrayUsageTap, OpenAIUsageStripper, SseUsageTap, from_body
from vault.errors import BadRequest, VaultError
from vault.extensions import db
from vault.inbound import parse_json, read_body, require_json_type
from vault.proxy.dialects import stream_error_event
from vault.proxy.keys import Caller, authenticate, bearer_caller, presented_vault_key
from vault.proxy.routes import ACTION_NAMES, Call, resolve
from vault.proxy.translate import Inbound, client_error_body, upstream_request
from vault.ratelimit import enforce_key_limit
from vault.runtime import VaultRuntime, runtime
from vault.upstream.client import UpstreamRequest, relayable_headers
from vault.upstream.failover import Answer, forward
from vault.upstream.relay import relay_stream


def authenticate_caller() -> Caller:
    """Check the Vault key before anything else is read or sent."""
    caller = authenticate(db.session, presented_vault_key(request))
    db.session.rollback()  # release the connection: a stream may hold this request for minutes
    return caller


def serve() -> Response:
    """Serve one proxied call, whatever its path: the allow-list decides what it is."""
    call = resolve(request.method, raw_path(request.environ), request.args.items(multi=True), bearer_caller(request))
    caller = authenticate_caller()
    vault = runtime()
    meter = Meter(vault.session_factory, vault.prices, vault.hold_policy, caller.user_id, caller.api_key_id,
                  call.action.name, client_request_id=g.request_id, observe=lambda entry: observe(vault, entry))
    try:
        limit = caller.rate_limit_rpm if caller.rate_limit_rpm is not None else vault.default_rpm
        enforce_key_limit(vault.limiter, caller.api_key_id, limit)
        inbound = read_inbound(call)
        upstream = upstream_request(inbound)
        meter.describe(upstream.model, upstream.streaming, call.action.billable, caller.price_version)
        meter.reserve(len(inbound.body), inbound.payload)
        answer = forward(upstream, vault.upstream, vault.health, vault.max_retries)
    except VaultError as exc:
        meter.finish(exc.status, ending="refused" if exc.status < 500 else "failed", error=exc.message)
        raise
    except HTTPException as exc:
        meter.finish(exc.code or 400, ending="refused", error=exc.name)
        raise
    except Exception:
        meter.finish(500, ending="failed", error="internal error")
        raise
    return respond(answer, upstream, meter)


def raw_path(environ: dict) -> str:
    """The request path exactly as sent (still percent-encoded), without the query.

    gunicorn and werkzeug keep the request target in `RAW_URI` / `REQUEST_URI`; `PATH_INFO`
    is already decoded, which would turn an encoded `/` into a real one.
    """
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not target:
        return environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    if target.startswith(("http://", "https://")):  # absolute-form request target
        target = "/" + target.split("://", 1)[1].partition("/")[2]
    path = target.partition("?")[0]
    prefix = environ.get("SCRIPT_NAME", "")
    return path[len(prefix):] if prefix and path.startswith(prefix) else path


def read_inbound(call: Call) -> Inbound:
    """The body (bounded, parsed once, a JSON object) and headers the core needs."""
    headers = tuple(request.headers.items())
    if not call.action.has_body:
        return Inbound(call, headers)
    body = read_body(request)
    require_json_type(request)
    payload = parse_json(body) if body.strip() else None
    if not isinstance(payload, dict):
        raise BadRequest("The request body must be a JSON object.")
    return Inbound(call, headers, body, payload)


def observe(vault: VaultRuntime, entry) -> None:
    """Count a finished request in the metrics; labels only ever come from the fixed set of actions."""
    first_byte = None if entry.first_byte_ms is None else entry.first_byte_ms / 1000
    endpoint = entry.endpoint if entry.endpoint in ACTION_NAMES else "other"
    vault.metrics.request_finished(endpoint, entry.priced_model, entry.status, entry.total_ms / 1000,
                                   first_byte, entry.usage.prompt + entry.usage.tool_prompt, entry.usage.output)


def respond(answer: Answer, upstream_request: UpstreamRequest, meter: Meter) -> Response:
    """The client's response; settlement runs when the response is closed."""
    headers = relayable_headers(answer.headers)
    key_id = answer.key.id
    if answer.response is None:
        meter.first_byte()
        if answer.status == 200:
            response = Response(answer.body, status=200, headers=headers)
            usage = from_body(answer.body)
        else:
            error = client_error_body(answer.status, answer.body, upstream_request.dialect, answer.key.secret)
            response = Response(json.dumps(error), status=answer.status, mimetype="application/json")
            usage = NO_USAGE
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
