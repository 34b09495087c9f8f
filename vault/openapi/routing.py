"""Operations and schemas of the model routing API (`/admin/api/model-aliases`, `PUT /admin/api/models/{model}`)."""

from pydantic.json_schema import models_json_schema

from vault.admin.routing_api import AliasBody, ModelSettingBody
from vault.openapi.paths import USER_WRITE, api, json_body, reply
from vault.openapi.schemas import STR, Schema, array, moment, obj, ref, typed

BODY_NOTES = {
    "AliasBody": "`target` is a model id (not another alias, not the alias itself). `defaults` makes a virtual "
                 "model: a native request fragment of `generationConfig`, `tools`, `toolConfig`, "
                 "`safetySettings`, `systemInstruction`, merged under what each caller sets (never over it). "
                 "OpenAI-compatible calls get the sampling fields and `thinkingConfig` (as "
                 "`extra_body.google.thinking_config`); the rest applies to native calls only. An alias may not "
                 "be named like a known model or a model with settings. A change applies to the next request "
                 "on every worker.",
    "ModelSettingBody": "`hidden` leaves the model out of models.list (both shapes) and refuses calls naming it "
                        "(404); aliases to it still work. `fallback` lists up to 5 models tried in order when "
                        "every key is cooling for this one (off when null or empty). Both at their defaults "
                        "clear the setting.",
}


def routing_schemas() -> dict[str, Schema]:
    """The request bodies (from the views' pydantic models) and the alias answers."""
    _, top = models_json_schema([(model, "validation") for model in (AliasBody, ModelSettingBody)],
                                ref_template="#/components/schemas/{model}")
    schemas = top["$defs"]
    for name, note in BODY_NOTES.items():
        schemas[name].setdefault("description", note)
    fragment = typed("object", nullable=True, description="A native request fragment; null: a plain alias.")
    return schemas | {
        "ModelAlias": obj({
            "alias": typed(STR), "target": typed(STR), "defaults": fragment,
            "openai_defaults": typed("object", nullable=True, description="What OpenAI-compatible chat bodies get "
                                                                          "of `defaults`."),
            "native_only": array(typed(STR), description="Fields of `defaults` only native calls get."),
            "updated_at": moment()}),
        "ModelAliasList": obj({"aliases": array(ref("ModelAlias"))}),
    }


def routing_paths() -> dict[str, Schema]:
    """`/admin/api/model-aliases[/{alias}]` and `PUT /admin/api/models/{model}`."""
    alias = reply("The alias.", ref("ModelAlias"))
    return {
        "/admin/api/model-aliases": {"get": api("listModelAliases", "Every model alias (virtual models included)",
                                                "billing", (200, reply("The aliases.", ref("ModelAliasList"))),
                                                401, 403)},
        "/admin/api/model-aliases/{alias}": {
            "put": api("putModelAlias", "Create or replace a model alias", "billing", (200, alias), 400, 401, 403,
                       413, requestBody=json_body(AliasBody), security=USER_WRITE),
            "delete": api("deleteModelAlias", "Remove a model alias", "billing", (204, reply("Done.")),
                          400, 401, 403, 404, security=USER_WRITE),
        },
        "/admin/api/models/{model}": {"put": api(
            "putModelSetting", "Hide a model or set its fallback chain", "billing",
            (200, reply("The model with its settings.", ref("ModelLimits"))), 400, 401, 403, 413,
            requestBody=json_body(ModelSettingBody), security=USER_WRITE)},
    }
