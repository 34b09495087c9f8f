"""One call's route: the model the caller named, the model that serves it, and the request rewritten for it.

`route()` resolves the name against the table: an alias becomes its target (native path and
body, or the OpenAI body's `model`) with its defaults merged; a hidden name is marked for
refusal. `Route.upstream_request()` builds the upstream request, whose `model` is the target
and whose `extras["requested_model"]` is the name the caller used; `Route.names` are both, for
checks that must hold for either (a key's model allow-list). A call naming no model, or a
plain model that is neither aliased nor hidden, passes through untouched.
"""

from dataclasses import dataclass, replace

from vault.errors import NotFound
from vault.inbound import encode_json
from vault.proxy.routes import CHAT, EMBEDDINGS, IMAGES, OPENAI_MODELS_GET, upstream_path
from vault.proxy.translate import Inbound, upstream_request
from vault.routing.merge import with_native_defaults, with_openai_defaults
from vault.routing.table import Alias, RoutingTable, thawed
from vault.upstream.client import UpstreamRequest

GENERATE_ACTIONS = ("generateContent", "streamGenerateContent")
REQUESTED_MODEL = "requested_model"  # the extras entry naming the model the caller asked for


@dataclass(frozen=True)
class Route:
    """Where one call goes; `inbound` is the request as the target model gets it."""

    requested: str
    target: str
    inbound: Inbound
    version: int | None = None
    hidden: bool = False
    alias: Alias | None = None
    fallback: tuple[str, ...] = ()
    fallback_from: str | None = None  # the model the call was routed to first, once a fallback serves it

    @property
    def names(self) -> tuple[str, ...]:
        """The name the caller used and the model that serves it (one name when they are the same)."""
        return tuple(dict.fromkeys(name for name in (self.requested, self.target) if name))

    def upstream_request(self, output_cap: int | None = None) -> UpstreamRequest:
        """The request Google gets (see `vault.proxy.translate.upstream_request`), naming both models."""
        built = upstream_request(self.inbound, output_cap)
        return replace(built, extras=built.extras | {REQUESTED_MODEL: self.requested})

    def stale(self, prices_stamp: int | None) -> bool:
        """Whether the table this route was read from is older than the stamp the hold read."""
        return prices_stamp is not None and prices_stamp != self.version

    def refuse_hidden(self) -> None:
        """`NotFound` (in the caller's dialect, no upstream call) for a hidden model."""
        if self.hidden:
            raise NotFound(f"The model '{self.requested}' is not served by this Vault.")

    def to(self, model: str) -> "Route":
        """This call, served by `model` instead (a fallback); defaults already merged stay."""
        inbound = renamed(self.inbound, self.names, model, self.target)
        first = self.fallback_from or self.target
        return replace(self, target=model, inbound=inbound, fallback=(), fallback_from=first)


def requested_model(inbound: Inbound) -> str:
    """The bare model id the caller named (path or OpenAI body), or "" for calls naming none."""
    call = inbound.call
    if call.action in (CHAT, EMBEDDINGS, IMAGES):
        model = (inbound.payload or {}).get("model")
        return model.strip().removeprefix("models/") if isinstance(model, str) else ""
    return call.model


def route(table: RoutingTable, inbound: Inbound) -> Route:
    """The route of `inbound` under `table` (see the module docstring)."""
    requested = requested_model(inbound) if inbound.call.action.kind == "model" else ""
    alias = table.alias(requested) if requested else None
    target = alias.target if alias else requested
    plain = Route(requested, target, inbound, table.version, hidden=bool(requested) and table.is_hidden(requested),
                  fallback=table.fallback(target) if target else ())
    if alias is None:
        return plain
    routed = renamed(inbound, (requested,), target, target)
    if alias.defaults:
        routed = with_defaults(routed, thawed(alias.defaults))
    return replace(plain, inbound=routed, alias=alias)


def renamed(inbound: Inbound, names: tuple[str, ...], model: str, body_model: str) -> Inbound:
    """`inbound` sent to `model`: its path, and every model reference of its body that names one of `names`."""
    call, payload = inbound.call, inbound.payload
    if call.action in (CHAT, EMBEDDINGS, IMAGES):
        return with_payload(inbound, (payload or {}) | {"model": model})
    version = call.upstream_path.split("/")[1]
    moved = replace(call, model=model, upstream_path=upstream_path(version, call.action, model))
    if call.action is OPENAI_MODELS_GET or payload is None:
        return replace(inbound, call=moved)
    rewritten = with_model_references(payload, {*names, body_model}, model)
    if rewritten is payload:
        return replace(inbound, call=moved)
    return replace(with_payload(inbound, rewritten), call=moved)


def with_model_references(payload: dict, names: set[str], model: str) -> dict:
    """A native body whose `model` fields (batch requests, countTokens' request) name `model` for `names`."""
    def fixed(item):
        named = item.get("model") if isinstance(item, dict) else None
        if isinstance(named, str) and named.removeprefix("models/") in names:
            return item | {"model": f"models/{model}"}
        return item

    changed = dict(payload)
    if isinstance(payload.get("requests"), list):
        changed["requests"] = [fixed(item) for item in payload["requests"]]
    for name in ("generateContentRequest", "generate_content_request"):
        if isinstance(payload.get(name), dict):
            changed[name] = fixed(payload[name])
    changed = fixed(changed)
    return payload if changed == payload else changed


def with_defaults(inbound: Inbound, defaults: dict) -> Inbound:
    """`inbound` with a virtual model's defaults merged under the caller's fields (generate and chat calls)."""
    action = inbound.call.action
    if action is CHAT:
        return with_payload(inbound, with_openai_defaults(inbound.payload or {}, defaults))
    if action.name in GENERATE_ACTIONS and inbound.payload is not None:
        return with_payload(inbound, with_native_defaults(inbound.payload, defaults))
    return inbound


def with_payload(inbound: Inbound, payload: dict) -> Inbound:
    """`inbound` carrying `payload`, re-encoded (the upstream reads exactly what the Vault read)."""
    return replace(inbound, payload=payload, body=encode_json(payload, inbound.large))

