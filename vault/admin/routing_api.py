"""Admin JSON API for model routing: aliases (virtual models), hidden models, fallback chains.

Its routes are listed in `vault/admin/__init__.py`; this module loads on the first call to one.
Every change bumps the `prices` stamp in its transaction, so it applies to the next proxied
request on every worker (see `vault.routing`).
"""

from typing import Annotated, Any

from flask import Response, jsonify
from pydantic import Field

from vault.admin import auditing
from vault.admin.billing_api import model_json
from vault.billing import limits
from vault.clock import isoformat
from vault.extensions import db
from vault.jsonapi import ChangeBody, read_body
from vault.models import GeminiModel, ModelAlias, ModelSetting
from vault.routing import changes
from vault.routing.merge import native_only, openai_defaults
from vault.runtime import runtime

ModelName = Annotated[str, Field(min_length=1, max_length=128)]


class AliasBody(ChangeBody):
    target: ModelName
    defaults: dict[str, Any] | None = None


class ModelSettingBody(ChangeBody):
    hidden: bool = False
    fallback: Annotated[list[ModelName], Field(max_length=changes.MAX_FALLBACKS)] | None = None


def alias_json(row: ModelAlias) -> dict[str, Any]:
    """An alias, with what its defaults become on OpenAI-compatible calls and what they leave out."""
    defaults = row.defaults or None
    return {"alias": row.alias, "target": row.target, "defaults": defaults,
            "openai_defaults": openai_defaults(defaults) if defaults else None,
            "native_only": native_only(defaults) if defaults else [], "updated_at": isoformat(row.updated_at)}


def setting_fields(row: ModelSetting | None) -> dict[str, Any]:
    return {"hidden": bool(row and row.hidden), "fallback": list(row.fallback) if row and row.fallback else None}


def model_item(model: str, row: GeminiModel | None, setting: ModelSetting | None) -> dict[str, Any]:
    """A model's token limits (the assumed ones when it is not in the table) and its routing settings."""
    if row is not None:
        return model_json(row) | setting_fields(setting)
    default_in, default_out = runtime().prices.default_limits
    return {"model": model, "input_token_limit": default_in, "output_token_limit": default_out,
            "source": "default", "refreshed_at": None} | setting_fields(setting)


def list_models() -> Response:
    """The model table (token limits, read-only here) with each model's `hidden` and `fallback`,
    models with settings but not in the table included; and the limits assumed for models not in it."""
    settings = changes.settings_by_model(db.session)
    items = [model_item(row.model, row, settings.pop(row.model, None)) for row in limits.list_models(db.session)]
    items += [model_item(model, None, setting) for model, setting in settings.items()]
    default_in, default_out = runtime().prices.default_limits
    return jsonify({"models": sorted(items, key=lambda item: item["model"]),
                    "default": {"input_token_limit": default_in, "output_token_limit": default_out}})


def put_model(model: str) -> Response:
    """Hide a model or set its fallback chain (both back to their defaults: the setting goes)."""
    body = read_body(ModelSettingBody)
    name = changes.check_name(model, "model")
    before = auditing.model_setting(db.session.get(ModelSetting, name))
    setting = changes.put_setting(db.session, model, body.hidden, body.fallback)
    auditing.audited_change("model.settings", f"model:{name}", before, auditing.model_setting(setting))
    db.session.commit()
    return jsonify(model_item(name, db.session.get(GeminiModel, name), setting))


def list_aliases() -> Response:
    return jsonify({"aliases": [alias_json(row) for row in changes.list_aliases(db.session)]})


def put_alias(alias: str) -> Response:
    """Create or replace an alias (a virtual model when it has `defaults`)."""
    body = read_body(AliasBody)
    before = auditing.alias_row(db.session.get(ModelAlias, alias.strip().removeprefix("models/")))
    row = changes.put_alias(db.session, alias, body.target, body.defaults)
    auditing.audited_change("alias.put", f"alias:{row.alias}", before, auditing.alias_row(row))
    db.session.commit()
    return jsonify(alias_json(row))


def delete_alias(alias: str) -> tuple[str, int]:
    name = alias.strip().removeprefix("models/")
    before = auditing.alias_row(db.session.get(ModelAlias, name))
    changes.delete_alias(db.session, alias)
    auditing.audited("alias.delete", f"alias:{name}", before, None)
    db.session.commit()
    return "", 204
