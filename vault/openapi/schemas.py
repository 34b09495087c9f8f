"""Component schemas of the OpenAPI document: request bodies, responses, error envelopes."""

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from vault.admin.api import AddKeysBody, PatchApiKeyBody, PatchKeyBody, PatchUserBody
from vault.admin.billing_api import PriceBody
from vault.admin.invites_api import NewInviteBody
from vault.auth.api import CredentialsBody, PasswordChangeBody, RegisterBody
from vault.dashboard.api import KeyPolicyBody, NewKeyBody

Schema = dict[str, Any]

INT, NUM, STR, BOOL = "integer", "number", "string", "boolean"
BODY_MODELS: tuple[type[BaseModel], ...] = (
    RegisterBody, CredentialsBody, PasswordChangeBody, NewKeyBody, KeyPolicyBody, PatchApiKeyBody, AddKeysBody,
    PatchKeyBody, PatchUserBody, PriceBody, NewInviteBody,
)
POLICY_NOTE = ("`expires_at` ISO 8601 (without a zone, UTC); `allowed_models` model name patterns (`*` any "
               "characters, `?` one); `spend_cap` USD per `spend_cap_period` (`day`, `week` from Monday, `month`, "
               "starting at midnight in `VAULT_SPEND_CAP_TIMEZONE`; null: over the key's whole life); "
               "`rate_limit_rpm` (0: no limit of the key's own; null: the global default), `rate_limit_tpm`, "
               "`max_concurrency`; `allowed_ips` CIDRs or addresses. A field left out keeps its value, null "
               "clears it; a field the Vault does not know is refused (400). A key never gets more than its "
               "owner's limits (403 naming the field).")
BODY_NOTES = {
    "RegisterBody": "`invite_code` is needed (and used up) when `VAULT_REGISTRATION=invite`, ignored otherwise.",
    "NewInviteBody": "An optional note (who it is for) and expiry (ISO 8601, in the future; without a zone, UTC). "
                     "The body may be empty.",
    "CredentialsBody": "JSON form of the credentials; the OAuth2 password form (`username`, `password`) works too.",
    "NewKeyBody": "An optional name for the new key and, optionally, its policy; the body may be empty. "
                  + POLICY_NOTE + " An owner's `rate_limit_rpm` is also held to the global default "
                  "(`VAULT_RATE_LIMIT_RPM`) when their account has no limit.",
    "KeyPolicyBody": "The owner's change to one of their keys' policy. " + POLICY_NOTE
                     + " An owner's `rate_limit_rpm` is also held to the global default (`VAULT_RATE_LIMIT_RPM`) "
                       "when their account has no limit.",
    "PatchApiKeyBody": "An admin's change to any Vault key's policy. " + POLICY_NOTE
                       + " An admin may lift `rate_limit_rpm` above the global default; to go above the owner's "
                         "limits, raise those first (`PATCH /admin/api/users/{user_id}` with `limits`).",
    "UserLimitFields": "A user's limits: ceilings of their keys' policy fields (a key without its own value gets "
                       "the user's; a key's own value above it is lowered to it), plus `visible_models`, the models "
                       "the user may see and call at all. Inside `limits`, a field left out keeps its value and "
                       "null clears it; `limits: null` clears them all.",
    "AddKeysBody": "Upstream Gemini keys to add to the pool; keys already pooled are reported, not duplicated.",
    "PatchKeyBody": "Enable or disable an upstream key by hand, or relabel it. `proxy_url` sends all of the key's "
                    "traffic through an HTTP(S) or SOCKS5 proxy (`http`, `https`, `socks5`, `socks5h`; "
                    "`scheme://[user:password@]host[:port]`); null clears it (the default egress again).",
    "PatchUserBody": "Send `balance` (set) or `balance_delta` (add), not both, with a `reason`; "
                     "`is_active` and `is_admin` change the account, `limits` its keys' ceilings "
                     "(`UserLimitFields`). Admins cannot lock themselves out.",
    "PriceBody": "USD per 1M tokens; the `_above` prices apply to prompts longer than `tier_threshold` tokens. "
                 "Audio prompt tokens pay `audio_input` (cached: `cached_audio_input`; empty = the text prices); "
                 "above the tier audio pays the `_above` input prices. `grounding_fee` is USD per 1,000 "
                 "requests grounded with Google Search (`grounding_unit: prompt`) or per 1,000 search queries "
                 "(`query`); empty = no fee. `image` is USD per generated image (`/v1/images/generations`); "
                 "empty = the model makes no images through the Vault (refused with a 400). A change applies "
                 "to the next request on every worker.",
}

# Schema building blocks


def ref(name: str) -> Schema:
    """A reference to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def typed(kind: str, nullable: bool = False, **keywords: Any) -> Schema:
    """A schema of one JSON type (`nullable` also allows null), with extra keywords."""
    return {"type": [kind, "null"] if nullable else kind, **keywords}


def array(items: Schema, **keywords: Any) -> Schema:
    """An array of `items`."""
    return {"type": "array", "items": items, **keywords}


def obj(properties: dict[str, Schema], **keywords: Any) -> Schema:
    """A Vault response object: every property is always present."""
    return {"type": "object", "properties": properties, "required": list(properties), **keywords}


def loose(properties: dict[str, Schema], description: str) -> Schema:
    """An upstream payload: the fields worth naming, all optional, others allowed."""
    return {"type": "object", "description": description, "properties": properties}


def moment(nullable: bool = False) -> Schema:
    """An ISO 8601 UTC timestamp."""
    return typed(STR, nullable, format="date-time")


def usd(nullable: bool = False) -> Schema:
    """An amount of US dollars (exact to the nano-dollar)."""
    return typed(NUM, nullable, description="USD")


# Component schemas


def body_schemas() -> dict[str, Schema]:
    """The request bodies, generated from the views' pydantic models."""
    _, top = models_json_schema([(model, "validation") for model in BODY_MODELS],
                                ref_template="#/components/schemas/{model}")
    schemas = top["$defs"]
    for name, note in BODY_NOTES.items():
        schemas[name].setdefault("description", note)
    return schemas


def user_fields() -> dict[str, Schema]:
    """The fields of `vault.jsonapi.user_json`."""
    return {
        "id": typed(INT), "email": typed(STR, format="email"), "is_active": typed(BOOL), "is_admin": typed(BOOL),
        "balance": usd(), "balance_nano_usd": typed(INT, description="The balance in nano-USD (exact)."),
        "request_count": typed(INT), "total_tokens": typed(INT), "spend": usd(), "spend_nano_usd": typed(INT),
        "created_at": moment(),
        "low_balance_threshold": usd(nullable=True),
        "limits": obj(limit_fields() | {
            "visible_models": patterns("Models the user may see and call at all; null: every model.")},
            description="What an admin allows this user's keys: ceilings and defaults of their policy "
                        "fields (each null: no limit)."),
    }


def patterns(description: str) -> Schema:
    """A nullable list of model name patterns."""
    return typed("array", nullable=True, items=typed(STR), description=description)


def limit_fields() -> dict[str, Schema]:
    """The policy fields a key's own settings and a user's limits share (null: not set)."""
    return {
        "allowed_models": patterns("Model name patterns (`*`, `?`); a call must match one."),
        "spend_cap": usd(nullable=True),
        "spend_cap_period": typed(STR, nullable=True, enum=["day", "week", "month", None],
                                  description="null with a cap: over the key's whole life."),
        "rate_limit_rpm": typed(INT, nullable=True, description="Requests per minute; 0 = no limit; "
                                                                "null = not set (the global default)."),
        "rate_limit_tpm": typed(INT, nullable=True, description="Tokens per minute: settled usage of the last "
                                                                "60 s plus the prompt estimate of calls in flight."),
        "max_concurrency": typed(INT, nullable=True, description="Requests in flight at once."),
        "allowed_ips": typed("array", nullable=True, items=typed(STR),
                             description="CIDRs the client's address must be inside (one of them)."),
    }


def effective_fields() -> dict[str, Schema]:
    """`vault.jsonapi.effective_json`: what the proxy enforces for a key."""
    lists = "A call must pass one entry of every list (the key's own, its owner's); [] = no restriction."
    return {
        "expires_at": moment(nullable=True),
        "allowed_models": array(array(typed(STR)), description=lists),
        "visible_models": patterns("The owner's visible models; null: every model."),
        "allowed_ips": array(array(typed(STR)), description=lists),
        "spend_cap": usd(nullable=True), "spend_cap_period": typed(STR, nullable=True),
        "rate_limit_rpm": typed(INT, nullable=True, description="The global default applied; null: no limit."),
        "rate_limit_tpm": typed(INT, nullable=True), "max_concurrency": typed(INT, nullable=True),
    }


def standing_fields() -> dict[str, Schema]:
    """`vault.policies.standing.key_standing`: where a key stands now against its effective limits."""
    return {
        "expired": typed(BOOL), "spend_cap": usd(nullable=True), "spend_cap_period": typed(STR, nullable=True),
        "period": typed(STR, nullable=True, description="The cap period now, e.g. `day:2026-11-27`, "
                                                        "`week:2026-W48`, `month:2026-11`, `life`; null: no cap."),
        "period_ends_at": moment(nullable=True),
        "spend_this_period": usd() | {"description": "USD spent in `period`, requests in flight included "
                                                     "(0 without a cap)."},
        "rate_limit_rpm": typed(INT, nullable=True, description="null: no limit."),
        "requests_this_minute": typed(INT), "rate_limit_tpm": typed(INT, nullable=True),
        "tokens_this_minute": typed(INT), "max_concurrency": typed(INT, nullable=True), "in_flight": typed(INT),
        "timezone": typed(STR, description="`VAULT_SPEND_CAP_TIMEZONE`, where cap periods start."),
    }


def api_key_fields() -> dict[str, Schema]:
    """The fields of `vault.jsonapi.api_key_json`: never the key itself."""
    return {
        "id": typed(INT), "name": typed(STR), "prefix": typed(STR, description="The key's visible start."),
        "created_at": moment(), "revoked_at": moment(nullable=True), "last_used_at": moment(nullable=True),
        "is_active": typed(BOOL), "request_count": typed(INT), "prompt_tokens": typed(INT),
        "output_tokens": typed(INT), "total_tokens": typed(INT), "spend": usd(), "spend_nano_usd": typed(INT),
        "expires_at": moment(nullable=True),
    } | limit_fields() | {
        "effective": obj(effective_fields(), description="The limits enforced: the key's own within its "
                                                         "owner's."),
        "standing": obj(standing_fields(), description="Where the key stands now against `effective`."),
    }


def account_schemas() -> dict[str, Schema]:
    """Users, Vault keys and tokens."""
    adjustment = obj({"id": typed(INT), "kind": typed(STR), "amount": usd(), "admin_id": typed(INT, nullable=True),
                      "reason": typed(STR), "created_at": moment()})
    return {
        "User": obj(user_fields()),
        "UserDetail": obj(user_fields() | {
            "api_keys": array(ref("ApiKey")), "adjustments": array(ref("BalanceAdjustment")),
            "ledger_balance_nano_usd": typed(INT, description="The balance by the ledger: adjustments − settled "
                                                              "costs − open holds; equal to `balance_nano_usd`."),
            "ledger": obj({
                "stored_nano_usd": typed(INT), "expected_nano_usd": typed(INT),
                "difference_nano_usd": typed(INT, description="Stored − expected; 0 unless something is wrong."),
                "consistent": typed(BOOL), "adjustments_nano_usd": typed(INT, description="Signup credit included."),
                "settled_cost_nano_usd": typed(INT),
                "open_holds_nano_usd": typed(INT, description="Held for requests in flight."),
                "open_holds": typed(INT, description="How many requests are in flight."),
            }, description="The stored balance checked against the ledger, read in one snapshot."),
        }),
        "BalanceAdjustment": adjustment,
        "ApiKey": obj(api_key_fields()),
        "NewApiKey": obj(api_key_fields() | {"key": typed(STR, description="The full key, shown this once only.")}),
        "Token": obj({"access_token": typed(STR), "token_type": typed(STR, enum=["bearer"]),
                      "expires_in": typed(INT, description="Seconds.")}),
        "CsrfToken": obj({"csrf_token": typed(STR)}),
        "Invite": obj(invite_fields()),
        "NewInvite": obj(invite_fields() | {
            "code": typed(STR, description="The invite code, shown this once only."),
            "url": typed(STR, format="uri", description="The sign-up page with the code filled in."),
        }),
    }


def invite_fields() -> dict[str, Schema]:
    """The fields of `vault.admin.invites_api.invite_json`: never the code."""
    return {
        "id": typed(INT), "prefix": typed(STR, description="The code's visible start."), "note": typed(STR),
        "state": typed(STR, enum=["unused", "used", "expired"]), "created_by": typed(INT, nullable=True),
        "created_at": moment(), "expires_at": moment(nullable=True), "used_by": typed(INT, nullable=True),
        "used_at": moment(nullable=True),
    }


def pool_schemas() -> dict[str, Schema]:
    """Upstream keys with their health (`vault.admin.api.upstream_key_json`)."""
    fields = {
        "id": typed(INT), "key": typed(STR, description="Masked; the full key never leaves the Vault."),
        "label": typed(STR),
        "proxy": typed(STR, nullable=True, description="The key's own egress proxy, masked "
                                                       "(`scheme://[user:***@]host[:port]`: never its password); "
                                                       "null: the default egress."),
        "state": typed(STR, enum=["active", "disabled", "deleted"]),
        "disabled_reason": typed(STR, nullable=True), "disabled_until": moment(nullable=True),
        "consecutive_failures": typed(INT), "last_error": typed(STR, nullable=True),
        "last_error_at": moment(nullable=True), "last_used_at": moment(nullable=True),
        "request_count": typed(INT), "failure_count": typed(INT),
        "cooldowns": array(obj({"model": typed(STR), "until": moment(), "reason": typed(STR)}),
                           description="Models this key is cooling down for."),
        "created_at": moment(),
        "deleted_at": moment(nullable=True) | {"description": "When an admin deleted it (listed only with "
                                                              "`include_deleted`)."},
        "resources_held": typed(INT, description="Live files and cached contents this key's project holds: "
                                                 "unreachable (409) while it is disabled, for good once deleted."),
    }
    return {
        "UpstreamKey": obj(fields),
        "UpstreamKeyAdded": obj(fields | {"created": typed(BOOL, description="False if it was already pooled; "
                                                                       "true also for a deleted key revived.")}),
    }


def resource_schemas() -> dict[str, Schema]:
    """A user's files and cached contents (`vault.resources.summary.user_resources_json`)."""
    resource = obj({
        "id": typed(INT), "kind": typed(STR, enum=["file", "cache"]),
        "name": typed(STR, description="Google's name, e.g. `files/abc` or `cachedContents/xyz`."),
        "display_name": typed(STR), "mime_type": typed(STR), "model": typed(STR, description="Caches only."),
        "size_bytes": typed(INT), "token_count": typed(INT, description="Caches only."),
        "upstream_key_id": typed(INT, nullable=True, description="The pooled key whose project holds it."),
        "upstream_key": typed(STR, nullable=True, description="That key, masked."),
        "upstream_key_label": typed(STR, nullable=True),
        "api_key_id": typed(INT, nullable=True, description="The Vault key that made it."),
        "api_key_prefix": typed(STR, nullable=True),
        "created_at": moment(), "expires_at": moment(nullable=True), "deleted_at": moment(nullable=True),
        "state": typed(STR, enum=["live", "expired", "deleted", "key_disabled", "key_removed"],
                       description="`key_disabled`: its upstream key is disabled (409 until enabled again); "
                                   "`key_removed`: its upstream key left the pool (unreachable for good)."),
    })
    return {
        "StoredResource": resource,
        "UserResources": obj({
            "storage": obj({"used_bytes": typed(INT, description="Live files and unfinished uploads."),
                            "quota_bytes": typed(INT, description="`VAULT_USER_STORAGE_BYTES`.")}),
            "resources": array(ref("StoredResource")),
        }),
    }


def billing_schemas() -> dict[str, Schema]:
    """Prices (USD per 1M tokens) and the usage ledger."""
    rates = {"input": usd(), "output": usd(), "cached_input": usd(nullable=True)}
    tier = {"tier_threshold": typed(INT, nullable=True), "input_above": usd(nullable=True),
            "output_above": usd(nullable=True), "cached_input_above": usd(nullable=True)}
    grounding = typed(NUM, True, description="USD per 1,000 Search-grounded prompts (or queries); null = no fee")
    limits = {"input_token_limit": typed(INT), "output_token_limit": typed(INT)}
    return {
        "Price": obj({"model": typed(STR)} | rates | tier | {
            "audio_input": usd(nullable=True), "cached_audio_input": usd(nullable=True), "grounding_fee": grounding,
            "grounding_unit": typed(STR, enum=["prompt", "query"]),
            "image": typed(NUM, True, description="USD per generated image; null = no images"), "updated_at": moment(),
        }),
        "PriceList": obj({"prices": array(ref("Price")),
                          "fallback": obj(rates | tier | {"grounding_fee": grounding},
                                          description="What models without a price are charged "
                                                      "(`VAULT_FALLBACK_*`; audio at the input price, "
                                                      "grounding per prompt).")}),
        "ModelLimits": obj({"model": typed(STR)} | limits | {
            "source": typed(STR, enum=["catalog", "upstream", "default"],
                            description="`default`: not in the table (listed for its routing settings); the "
                                        "limits are the assumed ones."),
            "refreshed_at": moment(nullable=True),
            "hidden": typed(BOOL, description="Left out of models.list and refused (404) when called by this name."),
            "fallback": typed("array", nullable=True, items=typed(STR),
                              description="Models tried in order when every key is cooling for this one; "
                                          "null: none.")}),
        "ModelLimitList": obj({"models": array(ref("ModelLimits")),
                               "default": obj(limits, description="Assumed for models not in the table "
                                                                  "(`VAULT_DEFAULT_*_TOKEN_LIMIT`).")}),
        "UsageRecord": usage_record_schema(),
        "UsagePage": obj({"items": array(ref("UsageRecord")), "total": typed(INT), "page": typed(INT),
                          "per_page": typed(INT)}),
        "UsageSummary": obj({"rows": array(obj({
            "day": typed(STR, format="date"), "model": typed(STR), "requests": typed(INT),
            "prompt_tokens": typed(INT), "output_tokens": typed(INT), "total_tokens": typed(INT), "cost": usd(),
        }))}),
    }


def usage_record_schema() -> Schema:
    """The fields of `vault.billing.queries.record_json`."""
    counts = ("prompt_tokens", "cached_tokens", "tool_prompt_tokens", "candidates_tokens", "thoughts_tokens",
              "output_tokens", "total_tokens")
    return obj({
        "id": typed(INT),
        "settlement_id": typed(STR, description="Made by the Vault for each request; the ledger's key."),
        "client_request_id": typed(STR, nullable=True, description="The traced `X-Request-Id` (the caller's if "
                                                                   "it looked sane), for correlation only."),
        "user_id": typed(INT), "api_key_id": typed(INT, nullable=True),
        "upstream_key_id": typed(INT, nullable=True), "endpoint": typed(STR), "model": typed(STR),
        "priced_model": typed(STR), "status": typed(INT), "streamed": typed(BOOL),
        "ending": typed(STR, description="How the request ended: completed, refused, failed, disconnected, "
                                         "abandoned (settled by the sweeper; status 0), …"),
        "usage_source": typed(STR, enum=["reported", "estimated", "storage"],
                              description="Tokens as the upstream reported them, or estimated by the Vault; "
                                          "storage: a cached content's storage charge (no tokens)."),
        **{name: typed(INT) for name in counts},
        "image_count": typed(INT, description="Images an images call delivered (each charged the image price)."),
        "price": obj({"input": usd(), "output": usd(), "cached_input": usd()}), "cost": usd(),
        "cost_nano_usd": typed(INT), "hold": usd(), "first_byte_ms": typed(INT, nullable=True),
        "total_ms": typed(INT), "started_at": moment(), "finished_at": moment(), "error": typed(STR, nullable=True),
        "fallback_from": typed(STR, nullable=True, description="The model the call was routed to first, when "
                                                               "its fallback chain served it (`model` answered)."),
    })


def error_schemas() -> dict[str, Schema]:
    """The three error envelopes (see `vault.errors.error_body`) and the probes' answers."""
    retry_info = loose({"@type": typed(STR), "retryDelay": typed(STR)}, "e.g. google.rpc.RetryInfo")
    return {
        "Error": obj({"error": {"type": "object", "required": ["code", "message"], "properties": {
            "code": typed(STR, description="Machine-readable, e.g. `validation_error`."), "message": typed(STR),
            "fields": {"type": "object", "additionalProperties": typed(STR), "description": "Field → problem."},
        }}}),
        "GoogleError": obj({"error": {"type": "object", "required": ["code", "message", "status"], "properties": {
            "code": typed(INT), "message": typed(STR), "status": typed(STR, description="e.g. `UNAUTHENTICATED`."),
            "details": array(retry_info),
        }}}),
        "OpenAIError": obj({"error": obj({"message": typed(STR), "type": typed(STR),
                                          "code": typed(STR, nullable=True), "param": typed(STR, nullable=True)})}),
        "Health": obj({"status": typed(STR, enum=["ok", "unavailable"]), "database": typed(STR, enum=["up", "down"])}),
        "Readiness": obj({
            "status": typed(STR, enum=["ready", "unavailable"]), "database": typed(STR, enum=["up", "down"]),
            "redis": typed(STR, enum=["up", "down", "skipped"],
                           description="`skipped` without REDIS_URL; `down` does not make the Vault unready."),
            "upstream_keys": typed(STR, enum=["up", "down"], description="`up` if some key can serve some model."),
            "models": typed("object", additionalProperties=typed(STR, enum=["available", "cooling", "unavailable"]),
                            description="`*` (any model without a cooldown of its own) and each model some key "
                                        "cools for: can a key serve it now? Empty when the database is down."),
            "keys": typed("object", additionalProperties=typed(INT),
                          description="Keys by state: `active`, `cooling`, `disabled`; empty when the database "
                                      "is down."),
        }),
    }


def gemini_schemas() -> dict[str, Schema]:
    """Gemini's native payloads, sketched; the full reference is Google's."""
    content = {"contents": array(ref("Content"))}
    embed = {"model": typed(STR), "content": ref("Content"), "taskType": typed(STR),
             "outputDimensionality": typed(INT)}
    return {
        "Content": loose({"role": typed(STR, enum=["user", "model"]), "parts": array(loose(
            {"text": typed(STR), "inlineData": loose({"mimeType": typed(STR), "data": typed(STR)}, "Base64 data.")},
            "One part: text, inline data, a function call or response, …"))}, "A turn of the conversation."),
        "GenerateContentRequest": loose(content | {
            "systemInstruction": ref("Content"), "tools": array({"type": "object"}),
            "generationConfig": {"type": "object"}, "safetySettings": array({"type": "object"}),
        }, "See https://ai.google.dev/api/generate-content."),
        "GenerateContentResponse": loose({
            "candidates": array({"type": "object"}), "usageMetadata": ref("UsageMetadata"),
            "modelVersion": typed(STR), "responseId": typed(STR),
        }, "One answer, or one chunk of a streamed answer."),
        "UsageMetadata": loose({name: typed(INT) for name in (
            "promptTokenCount", "cachedContentTokenCount", "candidatesTokenCount", "thoughtsTokenCount",
            "toolUsePromptTokenCount", "totalTokenCount")}, "What the Vault bills from."),
        "CountTokensRequest": loose(content | {"generateContentRequest": ref("GenerateContentRequest")}, "Either."),
        "CountTokensResponse": loose({"totalTokens": typed(INT)}, "The prompt's size."),
        "EmbedContentRequest": loose(embed, "See https://ai.google.dev/api/embeddings."),
        "EmbedContentResponse": loose({"embedding": loose({"values": array(typed(NUM))}, "A vector.")}, "One vector."),
        "BatchEmbedContentsRequest": loose({"requests": array(ref("EmbedContentRequest"))}, "Each names its model."),
        "BatchEmbedContentsResponse": loose({"embeddings": array(loose({"values": array(typed(NUM))}, "A vector."))},
                                            "One vector per request."),
        "Model": loose({"name": typed(STR), "displayName": typed(STR), "inputTokenLimit": typed(INT),
                        "outputTokenLimit": typed(INT), "supportedGenerationMethods": array(typed(STR))}, "A model."),
        "ModelList": loose({"models": array(ref("Model")), "nextPageToken": typed(STR)}, "Gemini's model list."),
        "File": loose({"name": typed(STR), "displayName": typed(STR), "mimeType": typed(STR),
                       "sizeBytes": typed(STR), "uri": typed(STR), "state": typed(STR),
                       "expirationTime": typed(STR)}, "A file of the Files API, as Google describes it."),
        "FileList": loose({"files": array(ref("File")), "nextPageToken": typed(STR)},
                          "A page of the caller's own files (from the Vault's records)."),
        "CachedContent": loose({"name": typed(STR), "model": typed(STR), "contents": array(ref("Content")),
                                "systemInstruction": ref("Content"), "ttl": typed(STR), "expireTime": typed(STR),
                                "displayName": typed(STR), "usageMetadata": loose(
                                    {"totalTokenCount": typed(INT)}, "The cache's size, what storage is charged on.")},
                               "A cached content; see https://ai.google.dev/api/caching."),
        "CachedContentList": loose({"cachedContents": array(ref("CachedContent")), "nextPageToken": typed(STR)},
                                   "A page of the caller's own cached contents."),
    }


def openai_schemas() -> dict[str, Schema]:
    """The OpenAI-compatible payloads, sketched; see Gemini's OpenAI compatibility guide."""
    usage = loose({"prompt_tokens": typed(INT), "completion_tokens": typed(INT), "total_tokens": typed(INT)}, "Tokens.")
    model = loose({"id": typed(STR), "object": typed(STR), "owned_by": typed(STR), "created": typed(INT)}, "A model.")
    return {
        "ChatCompletionRequest": loose({
            "model": typed(STR), "messages": array(loose({"role": typed(STR), "content": {}}, "A message.")),
            "stream": typed(BOOL), "stream_options": loose({"include_usage": typed(BOOL)}, "Streaming options."),
            "temperature": typed(NUM), "max_tokens": typed(INT), "tools": array({"type": "object"}),
        }, "See https://ai.google.dev/gemini-api/docs/openai."),
        "ChatCompletion": loose({"id": typed(STR), "object": typed(STR), "created": typed(INT), "model": typed(STR),
                                 "choices": array({"type": "object"}), "usage": usage}, "A whole answer."),
        "EmbeddingsRequest": loose({"model": typed(STR), "input": {"anyOf": [typed(STR), array(typed(STR))]},
                                    "dimensions": typed(INT), "encoding_format": typed(STR)}, "Texts to embed."),
        "EmbeddingsResponse": loose({"object": typed(STR), "model": typed(STR), "usage": usage, "data": array(loose(
            {"object": typed(STR), "index": typed(INT), "embedding": array(typed(NUM))}, "One vector."))}, "Vectors."),
        "ImagesRequest": loose({
            "model": typed(STR, description="An image model with an image price, e.g. imagen-4.0-generate-001."),
            "prompt": typed(STR, maxLength=8000), "n": typed(INT, minimum=1, maximum=4),
            "size": typed(STR, description="WIDTHxHEIGHT, e.g. 1024x1024."),
            "response_format": typed(STR, enum=["b64_json"]),
        }, "See https://ai.google.dev/gemini-api/docs/openai; no other field is accepted."),
        "ImagesResponse": loose({"created": typed(INT), "data": array(loose(
            {"b64_json": typed(STR), "revised_prompt": typed(STR)}, "One image."))}, "The images made."),
        "OpenAIModel": model,
        "OpenAIModelList": loose({"object": typed(STR), "data": array(ref("OpenAIModel"))}, "The models."),
    }


def security_schemes(session_cookie: str) -> dict[str, Schema]:
    """How callers authenticate: JWT or session on the JSON API, a Vault key on the proxy."""
    return {
        "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                       "description": "An access token from `POST /auth/token`."},
        "sessionCookie": {"type": "apiKey", "in": "cookie", "name": session_cookie,
                          "description": "The browser session of a logged-in user."},
        "csrfToken": {"type": "apiKey", "in": "header", "name": "X-CSRFToken",
                      "description": "From `GET /auth/csrf-token`; needed with a session on POST/PUT/PATCH/DELETE."},
        "vaultKeyBearer": {"type": "http", "scheme": "bearer", "description": "A Vault key (openai SDK style)."},
        "vaultKeyHeader": {"type": "apiKey", "in": "header", "name": "x-goog-api-key",
                           "description": "A Vault key (google-genai SDK style)."},
        "vaultKeyQuery": {"type": "apiKey", "in": "query", "name": "key", "description": "A Vault key."},
    }


