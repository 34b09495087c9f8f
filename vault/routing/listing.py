"""models.list and models.get as callers see them: hidden models left out, aliases listed as models.

The upstream's answer is rewritten, in whichever shape it came (native `{"models": [...]}` or
OpenAI's `{"object": "list", "data": [...]}`): hidden models are dropped from every page, and
each alias is added on the last page (the one without `nextPageToken`) as a copy of its
target's entry under its own name, or, when the target is not on that page, as a minimal entry
with the target's token limits. A models.get of an alias was sent for its target; its answer
is renamed to the alias.
"""

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from vault.proxy.routes import MODELS_GET, MODELS_LIST, OPENAI_MODELS_GET, OPENAI_MODELS_LIST
from vault.routing.table import Alias, RoutingTable

if TYPE_CHECKING:  # the proxy imports this module while vault.routing.route may be importing the proxy
    from vault.routing.route import Route

LISTS = (MODELS_LIST, OPENAI_MODELS_LIST)
GETS = (MODELS_GET, OPENAI_MODELS_GET)
Limits = Callable[[str], tuple[int, int]]


def rewrites(route: "Route") -> bool:
    """Whether this call's successful answer is rewritten here."""
    return route.inbound.call.action in LISTS or (route.inbound.call.action in GETS and route.alias is not None)


def rewritten(route: "Route", table: RoutingTable, body: bytes, limits: Limits,
              allowed: Callable[[tuple[str, ...]], bool] | None = None) -> bytes:
    """The caller's form of an upstream models.list / models.get answer (unchanged if it is not JSON).

    `allowed(names)` says whether the caller's key may use a model (its name, and the target
    of an alias): lists show only those."""
    try:
        answer = json.loads(body)
    except ValueError:
        return body
    if not isinstance(answer, dict):
        return body
    if route.inbound.call.action in GETS:
        answer = renamed_entry(answer, route.requested, route.alias)
    elif isinstance(answer.get("models"), list) or "data" not in answer:
        answer = native_list(answer, table, limits)
    else:
        answer = openai_list(answer, table)
    if allowed is not None and route.inbound.call.action in LISTS:
        answer = usable_only(answer, table, allowed)
    return json.dumps(answer, separators=(",", ":")).encode()


def usable_only(answer: dict, table: RoutingTable, allowed: Callable[[tuple[str, ...]], bool]) -> dict:
    """A list (either shape) without the models the caller's key may not use."""
    def usable(name: str) -> bool:
        alias = table.aliases.get(name)
        return allowed((name, alias.target) if alias else (name,))

    if isinstance(answer.get("models"), list):
        return answer | {"models": [entry for entry in answer["models"] if usable(bare(entry.get("name")))]}
    if isinstance(answer.get("data"), list):
        return answer | {"data": [entry for entry in answer["data"] if usable(bare(entry.get("id")))]}
    return answer


def bare(name: object) -> str:
    return name.removeprefix("models/") if isinstance(name, str) else ""


def renamed_entry(entry: dict, name: str, alias: Alias | None) -> dict:
    """A model entry (either shape) under the alias `name`, saying what it stands for."""
    if "id" in entry:
        prefix = "models/" if str(entry["id"]).startswith("models/") else ""
        return entry | {"id": prefix + name}
    described = f"Alias of {alias.target}" + (" with request defaults" if alias and alias.defaults else "")
    return entry | {"name": f"models/{name}", "displayName": name, "description": described} | (
        {"baseModelId": name} if "baseModelId" in entry else {})


def native_list(answer: dict, table: RoutingTable, limits: Limits) -> dict:
    """A native models.list page: hidden models out, aliases in on the last page."""
    models = [entry for entry in answer.get("models") or [] if isinstance(entry, dict)]
    by_name = {bare(entry.get("name")): entry for entry in models}
    kept = [entry for entry in models
            if bare(entry.get("name")) not in table.hidden and bare(entry.get("name")) not in table.aliases]
    if not answer.get("nextPageToken"):
        kept += [renamed_entry(by_name.get(alias.target) or minimal_entry(alias.target, limits), name, alias)
                 for name, alias in sorted(table.aliases.items())]
    return answer | {"models": kept}


def minimal_entry(model: str, limits: Limits) -> dict:
    """A native model entry for a target not on this page."""
    input_limit, output_limit = limits(model)
    return {"name": f"models/{model}", "displayName": model, "inputTokenLimit": input_limit,
            "outputTokenLimit": output_limit, "supportedGenerationMethods": ["generateContent", "countTokens"]}


def openai_list(answer: dict, table: RoutingTable) -> dict:
    """An OpenAI-shaped model list: hidden models out, aliases in."""
    data = [entry for entry in answer.get("data") or [] if isinstance(entry, dict)]
    kept = [entry for entry in data if bare(entry.get("id")) not in table.hidden
            and bare(entry.get("id")) not in table.aliases]
    prefix = "models/" if any(str(entry.get("id", "")).startswith("models/") for entry in data) else ""
    kept += [{"id": prefix + name, "object": "model", "created": 0, "owned_by": "google"}
             for name in sorted(table.aliases)]
    return answer | {"data": kept}
