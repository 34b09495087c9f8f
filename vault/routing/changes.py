"""An admin's changes to the routing table, checked, each bumping the `prices` stamp with it.

The rules, kept simple so a route is always one step:
- names (aliases, targets, models, fallbacks) are plain model ids, as the proxy accepts them;
- an alias's target is a model, never another alias, and never the alias itself; a name some
  alias targets cannot become an alias (no chains);
- an alias may not shadow a known model (the model table) or a model with settings;
- hidden and fallback are set on models, not on aliases; a fallback chain names up to
  `MAX_FALLBACKS` distinct models, not the model itself, not aliases;
- `defaults` is a native request fragment of `DEFAULT_FIELDS` (see `vault.routing.merge`).
"""

import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.billing.prices import bump_price_version
from vault.errors import NotFound, ValidationFailed
from vault.models import GeminiModel, ModelAlias, ModelSetting
from vault.proxy.routes import MODEL_ID
from vault.routing.merge import DEFAULT_FIELDS

MAX_FALLBACKS = 5
MAX_DEFAULTS_BYTES = 16 * 1024
DEFAULT_TYPES = {"generationConfig": "object", "tools": "array", "toolConfig": "object", "safetySettings": "array",
                 "systemInstruction": "object"}
PYTHON_TYPES = {"object": dict, "array": list}


def check_name(name: str, field: str) -> str:
    """`name` without a `models/` prefix, if it is a plain model id."""
    bare = name.strip().removeprefix("models/")
    if not MODEL_ID.fullmatch(bare):
        raise ValidationFailed(fields={field: "must be a model id: letters, digits, '.', '-' and '_'"})
    return bare


def check_defaults(defaults: dict | None) -> dict | None:
    """`defaults` if it is a native request fragment a virtual model may set; None for none."""
    if not defaults:
        return None
    unknown = sorted(set(defaults) - set(DEFAULT_FIELDS))
    if unknown:
        raise ValidationFailed(fields={"defaults": f"unknown field(s) {', '.join(unknown)}; "
                                                   f"allowed: {', '.join(DEFAULT_FIELDS)}"})
    for name, kind in DEFAULT_TYPES.items():
        if name in defaults and not isinstance(defaults[name], PYTHON_TYPES[kind]):
            raise ValidationFailed(fields={f"defaults.{name}": f"must be a JSON {kind}"})
    if len(json.dumps(defaults)) > MAX_DEFAULTS_BYTES:
        raise ValidationFailed(fields={"defaults": f"must be at most {MAX_DEFAULTS_BYTES} bytes of JSON"})
    return defaults


def put_alias(session: Session, alias: str, target: str, defaults: dict | None) -> ModelAlias:
    """Create or replace the alias `alias` → `target`; bumps the stamp."""
    alias, target = check_name(alias, "alias"), check_name(target, "target")
    if target == alias:
        raise ValidationFailed(fields={"target": "an alias cannot point to itself"})
    if session.get(ModelAlias, target) is not None:
        raise ValidationFailed(fields={"target": f"'{target}' is an alias; point to a model"})
    if session.scalar(select(ModelAlias.alias).where(ModelAlias.target == alias).limit(1)) is not None:
        raise ValidationFailed(fields={"alias": f"'{alias}' is the target of another alias"})
    if session.get(GeminiModel, alias) is not None or session.get(ModelSetting, alias) is not None:
        raise ValidationFailed(fields={"alias": f"'{alias}' is a model; an alias may not shadow it"})
    row = session.get(ModelAlias, alias) or ModelAlias(alias=alias)
    row.target, row.defaults = target, check_defaults(defaults)
    session.add(row)
    bump_price_version(session)
    return row


def delete_alias(session: Session, alias: str) -> None:
    """Remove an alias (callers using it get 404 from then on); bumps the stamp."""
    row = session.get(ModelAlias, alias.strip().removeprefix("models/"))
    if row is None:
        raise NotFound("No such alias.")
    session.delete(row)
    bump_price_version(session)


def put_setting(session: Session, model: str, hidden: bool, fallback: list[str] | None) -> ModelSetting | None:
    """Set whether `model` is hidden and its fallback chain; back to the defaults, the row goes. Bumps the stamp."""
    model = check_name(model, "model")
    if session.get(ModelAlias, model) is not None:
        raise ValidationFailed(fields={"model": f"'{model}' is an alias; set this on its target"})
    chain = [check_name(name, "fallback") for name in fallback or []]
    check_chain(session, model, chain)
    row = session.get(ModelSetting, model)
    if not hidden and not chain:
        if row is not None:
            session.delete(row)
        bump_price_version(session)
        return None
    row = row or ModelSetting(model=model)
    row.hidden, row.fallback = hidden, chain or None
    session.add(row)
    bump_price_version(session)
    return row


def check_chain(session: Session, model: str, chain: list[str]) -> None:
    """A fallback chain: distinct models, at most `MAX_FALLBACKS`, not `model`, not aliases."""
    if len(chain) > MAX_FALLBACKS:
        raise ValidationFailed(fields={"fallback": f"at most {MAX_FALLBACKS} models"})
    if len(set(chain)) != len(chain) or model in chain:
        raise ValidationFailed(fields={"fallback": "distinct models other than the model itself"})
    aliases = [name for name in chain if session.get(ModelAlias, name) is not None]
    if aliases:
        raise ValidationFailed(fields={"fallback": f"'{aliases[0]}' is an alias; name models"})


def list_aliases(session: Session) -> list[ModelAlias]:
    return list(session.scalars(select(ModelAlias).order_by(ModelAlias.alias)))


def settings_by_model(session: Session) -> dict[str, ModelSetting]:
    """Every model setting, by model id."""
    return {row.model: row for row in session.scalars(select(ModelSetting).order_by(ModelSetting.model))}
