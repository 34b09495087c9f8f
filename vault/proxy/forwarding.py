"""The common path of every proxied request: resolve, authenticate, meter, forward with failover, respond.

The view (`serve`) is the only place that reads Flask's request: it resolves the path
against the allow-list (no upstream call for anything else), checks the Vault key, reads
the body within its limits, and hands an explicit `Inbound` value to plain code.

Every request that gets past authentication is settled exactly once: a refusal or an
upstream failure at once, an answer after its last byte went out (the response's close
callback), so the client never waits on the ledger write.

Before forwarding, the call touches the database once: the hold (`Meter.reserve`), which
also reads the version stamps. A worker whose cached Vault keys or prices turn out stale
gives that hold back, refreshes, and checks and holds again, so a revocation or a price
edit applies to the very next call. When the balance covers less output
than the request allows, the upstream gets the lowered cap and the caller sees it in
`X-Vault-Output-Cap`. A stream is watched as it is relayed: a piece that would take its cost
past the hold is not relayed, and the stream ends with an in-band error instead (`Delivery`).
"""

import json
from dataclasses import dataclass, replace

from flask import Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from vault.access import READ_ACCESS_STAMP, Caller, authenticate
from vault.billing.holds import Stamps
from vault.billing.meter import Meter
from vault.billing.usage import ArrayUsageTap, Evidence, OpenAIUsageStripper, SseUsageTap, evidence_of_body
from vault.clock import utcnow
from vault.errors import POLICY_HEADER, BadRequest, VaultError
from vault.extensions import db
from vault.inbound import INLINE_JSON_TOKENS, element_count, encode_json, parse_json, read_body, require_json_type
from vault.policies.door import check_door, check_model, quota_for
from vault.policies.rules import Policy
from vault.proxy.dialects import stream_error_event
from vault.proxy.images import images_returned
from vault.proxy.keys import bearer_caller, presented_vault_key
from vault.proxy.resources import serve_resource, upload_chunk
from vault.proxy.routes import ACTION_NAMES, UPLOAD_CHUNK, Call, resolve
from vault.proxy.translate import Inbound, client_error_body
from vault.ratelimit import enforce_key_limit
from vault.resources import registry
from vault.resources.references import references
from vault.routing import fallback, listing
from vault.routing import route as routing
from vault.runtime import VaultRuntime, runtime
from vault.security import off_hub
from vault.upstream.client import UpstreamRequest, relayable_headers
from vault.upstream.failover import Answer, forward, forward_pinned
from vault.upstream.relay import COMPLETED, CutOff, relay_stream

OUTPUT_CAP_HEADER = "X-Vault-Output-Cap"


def authenticate_caller(vault: VaultRuntime, presented: str | None) -> Caller:
    """Check the Vault key before anything else is read or sent (from the worker's cache when it can)."""
    try:
        return authenticate(db.session, presented, vault.keys)
    finally:
        if db.session.registry.has():
            db.session.rollback()  # release the connection: a stream may hold this request for minutes


def serve() -> Response:
    """Serve one proxied call, whatever its path: the allow-list decides what it is."""
    try:
        call = resolve(request.method, raw_path(request.environ), request.args.items(multi=True),
                       bearer_caller(request))
    except VaultError as exc:
        if "upload_id" in request.args:  # a refused upload URL: the SDK must stop, not retry
            exc.headers.setdefault("X-Goog-Upload-Status", "final")
        raise
    vault = runtime()
    if call.action is UPLOAD_CHUNK:
        return upload_chunk(call, vault)  # no API key: the upload URL's token is the credential
    presented = presented_vault_key(request)
    inbound, prices_seen, limited_at, holder = None, None, None, None
    for refreshed in (False, True):
        caller = authenticate_caller(vault, presented)
        meter = Meter(vault.books, vault.prices, vault.hold_policy, caller.user_id, caller.api_key_id,
                      call.action.name, client_request_id=g.request_id, observe=lambda entry: observe(vault, entry))
        try:
            now = utcnow()
            check_door(caller.policy, now, request.remote_addr or "")
            limit = caller.rate_limit_rpm if caller.rate_limit_rpm is not None else vault.default_rpm
            if limit != limited_at:  # counted before the body is read; again if a refresh changed the limit
                enforce_key_limit(vault.limiter, caller.api_key_id, limit)
                limited_at = limit
            if inbound is None:
                inbound = read_inbound(call)
                holder = key_holding(caller, inbound)
                if holder is not None:  # Google reads exactly what was checked (a duplicate key cannot hide one)
                    inbound = replace(inbound, body=encode_json(inbound.payload, inbound.large))
            route = routing.route(vault.routing.table(prices_seen), inbound)  # alias, virtual model, hidden
            upstream = route.upstream_request() if call.action.kind == "model" and not route.hidden else None
            check_model(caller.policy, model_names(route, upstream))
            if upstream is not None:
                meter.describe(upstream.model, upstream.streaming, call.action.billable, prices_seen)
            meter.quota = quota_for(caller.api_key_id, caller.policy, now,
                                    current_app.config["VAULT_SPEND_CAP_TIMEZONE"])
            stamps = meter.reserve(len(route.inbound.body), route.inbound.payload, route.inbound.large)
            if not refreshed and (stale(vault, caller, meter, stamps) or route.stale(stamps.prices)):
                meter.release()  # checked against stale keys or prices: give it back, check and hold again
                prices_seen = stamps.prices
                continue
            route.refuse_hidden()
            if upstream is None:  # files, uploads, cached contents: free, owned, pinned to their key
                return serve_resource(call, vault, caller, meter, inbound.payload, len(inbound.body))
            if meter.lowered_cap is not None:
                upstream = route.upstream_request(meter.lowered_cap)
            if holder is None:
                answer, upstream = forward_routed(vault, route, upstream, meter, caller.policy)
            else:  # the files or cache it names live in one key's project: that key or nothing
                answer = forward_pinned(upstream, vault.upstream, vault.health, holder.key_id, holder.unavailable)
        except VaultError as exc:
            if not refreshed and POLICY_HEADER in exc.headers and not meter.hold \
                    and cached_policy_changed(vault, caller):
                if exc.headers[POLICY_HEADER] == "rate_limit_rpm":
                    limited_at = None  # a refused request was not counted: count it under the new limit
                continue  # refused by a policy changed since this worker cached it: check again, from the top
            meter.finish(exc.status, ending="refused" if exc.status < 500 else "failed", error=exc.message)
            raise
        except HTTPException as exc:
            meter.finish(exc.code or 400, ending="refused", error=exc.name)
            raise
        except Exception:
            meter.finish(500, ending="failed", error="internal error")
            raise
        return respond(answer, upstream, meter)
    raise AssertionError("unreachable: the second pass always returns or raises")


def model_names(route: "routing.Route", upstream: UpstreamRequest | None) -> tuple[str, ...]:
    """The model a call names, as the key's model lists check it: the name called and what it
    routes to (in both dialects); a cached content's model; none for calls about no model
    (files, lists)."""
    inbound = route.inbound
    if upstream is not None or route.requested:
        return route.names
    if inbound.call.model:
        return (inbound.call.model,)
    if inbound.call.action.name == "cachedContents.create" and isinstance(inbound.payload, dict):
        model = inbound.payload.get("model")
        return (model,) if isinstance(model, str) else ()
    return ()


def forward_routed(vault: VaultRuntime, route: "routing.Route", upstream: UpstreamRequest, meter: Meter,
                   policy: Policy) -> tuple[Answer, UpstreamRequest]:
    """`forward` through the pool, then the model's fallback chain while every key is cooling for it
    (each fallback re-priced and re-held by `Meter.retarget`); models.list/get answers as callers see them."""
    def send(request: UpstreamRequest) -> Answer:
        return forward(request, vault.upstream, vault.health, vault.max_retries)

    def usable(names: tuple[str, ...]) -> bool:
        return policy.allows_model(names) is None

    # a fallback serves only models the key may use itself
    route = replace(route, fallback=tuple(model for model in route.fallback if usable((model,))))

    def reroute(next_route: "routing.Route") -> UpstreamRequest:
        inbound = next_route.inbound
        meter.retarget(next_route.target, len(inbound.body), inbound.payload, inbound.large)
        return next_route.upstream_request(meter.lowered_cap)

    answer, upstream = fallback.forward_with_fallback(route, upstream, send, reroute)
    if answer.status == 200 and answer.response is None and listing.rewrites(route):
        answer = replace(answer, body=listing.rewritten(route, vault.routing.table(), answer.body, vault.prices.limits,
                                                        usable))
    return answer, upstream


@dataclass(frozen=True)
class Holder:
    """The upstream key a call must use because of the files or cache it names."""

    key_id: int
    unavailable: str  # the 409 text if that key is disabled


def key_holding(caller: Caller, inbound: Inbound) -> Holder | None:
    """The key holding every file and cache a model call names (checked as the caller's own), or None.

    Only bodies that name one pay for the lookup; anything not the caller's is "not found".
    """
    if inbound.payload is None or inbound.call.action.kind != "model":
        return None
    refs = off_hub(references, inbound.payload) if inbound.large else references(inbound.payload)
    if not refs:
        return None
    try:
        key_id = registry.holding_key(db.session, caller.user_id, refs, utcnow())
    finally:
        db.session.rollback()
    return Holder(key_id, registry.unavailable_message(refs.names[0]))


def cached_policy_changed(vault: VaultRuntime, caller: Caller) -> bool:
    """Whether a key's policy changed since this worker cached it (the cache is then dropped).

    Asked when a policy refused a call: a refused call never reaches the hold, whose stamps
    would show the cache stale, so without this a loosened policy would keep refusing."""
    try:
        stamp = db.session.scalar(READ_ACCESS_STAMP)
    finally:
        db.session.rollback()
    return not vault.keys.current(caller, stamp)


def stale(vault: VaultRuntime, caller: Caller, meter: Meter, stamps: Stamps) -> bool:
    """Whether the call was checked or priced against what the hold's stamps show changed since.

    Compared with what this very call used (another call may refresh the caches meanwhile):
    the stamp its key was read at, the price version its price was read from.
    """
    keys_current = vault.keys.current(caller, stamps.access)
    return not keys_current or (meter.priced and stamps.prices != meter.priced_at)


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
    tokens = element_count(body)  # counted once: parsing, encoding and estimating all size by it
    payload = parse_json(body, tokens) if body.strip() else None
    if not isinstance(payload, dict):
        raise BadRequest("The request body must be a JSON object.")
    return Inbound(call, headers, body, payload, large=tokens > INLINE_JSON_TOKENS)


def observe(vault: VaultRuntime, entry) -> None:
    """Count a finished request in the metrics; labels only ever come from the fixed set of actions."""
    first_byte = None if entry.first_byte_ms is None else entry.first_byte_ms / 1000
    endpoint = entry.endpoint if entry.endpoint in ACTION_NAMES else "other"
    vault.metrics.request_finished(endpoint, entry.priced_model, entry.status, entry.total_ms / 1000,
                                   first_byte, entry.usage.prompt + entry.usage.tool_prompt, entry.usage.output)


class Delivery:
    """A relayed stream's metering: what the client has been sent, the cut-off at the hold, the settlement."""

    def __init__(self, meter: Meter, tap: SseUsageTap | ArrayUsageTap) -> None:
        self.meter, self.tap = meter, tap
        self.evidence = Evidence()  # what the pieces relayed so far showed
        self.ending = COMPLETED

    def observe(self, piece: bytes) -> None:
        """See an upstream piece before it is relayed; `CutOff` if it would take the cost past the hold."""
        self.meter.first_byte()
        self.tap.feed(piece)
        seen = self.tap.evidence
        if self.meter.passes_hold(seen):
            raise CutOff()
        self.evidence = seen

    def finished(self, ending: str) -> None:
        self.ending = ending

    def settle(self, upstream_key_id: int) -> None:
        """Charge for what was delivered."""
        error = None if self.ending == COMPLETED else self.ending
        self.meter.finish(200, self.evidence, upstream_key_id, self.ending, error)


def respond(answer: Answer, upstream_request: UpstreamRequest, meter: Meter) -> Response:
    """The client's response; settlement runs when the response is closed."""
    cap = {} if meter.lowered_cap is None else {OUTPUT_CAP_HEADER: str(meter.lowered_cap)}
    headers = relayable_headers(answer.headers) | cap
    key_id = answer.key.id
    if answer.response is None:
        meter.first_byte()
        evidence = None
        if answer.status == 200:
            response = Response(answer.body, status=200, headers=headers)
            asked = upstream_request.extras.get("images")  # images: counted on the bytes, never decoded
            evidence = Evidence(images=images_returned(answer.body, asked)) if asked else evidence_of_body(answer.body)
        else:
            error = client_error_body(answer.status, answer.body, upstream_request.dialect, answer.key.secret)
            response = Response(json.dumps(error), status=answer.status, mimetype="application/json", headers=cap)
        response.call_on_close(lambda: meter.finish(answer.status, evidence, key_id))
        return response
    sse = "text/event-stream" in answer.headers.get("Content-Type", "") or upstream_request.dialect == "openai"
    delivery = Delivery(meter, SseUsageTap() if sse else ArrayUsageTap())
    stripper = OpenAIUsageStripper() if upstream_request.extras.get("strip_usage") else None
    events = relay_stream(answer, lambda ending: stream_error_event(upstream_request.dialect, sse, ending),
                          delivery.finished, observe=delivery.observe, rewrite=stripper)
    response = Response(events, status=200, headers=headers | {"X-Accel-Buffering": "no", "Cache-Control": "no-cache"})
    response.call_on_close(lambda: delivery.settle(key_id))
    return response
