"""The OpenAPI 3.1 document of the JSON API and the proxy, served at `/openapi.json`.

Request bodies are the pydantic models the views validate with, so they cannot drift.
Response shapes restate `user_json`, `api_key_json`, `upstream_key_json`, `price_json`,
`adjustment_json` and `record_json`; tests/test_openapi.py checks them against live
responses and checks that every API route in `app.url_map` is described here. Gemini's and
OpenAI's own payloads are only sketched: the proxy passes them through as they are.
"""

import re
from copy import deepcopy
from typing import Any

from flask import Flask
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from vault.admin.api import AddKeysBody, PatchApiKeyBody, PatchKeyBody, PatchUserBody
from vault.admin.billing_api import PriceBody, UsageQuery
from vault.auth.api import CredentialsBody, PasswordChangeBody
from vault.dashboard.api import NewKeyBody
from vault.jsonapi import NewAccountBody

Schema = dict[str, Any]

API_VERSION = "0.1.0"  # the project version in pyproject.toml; the test keeps them equal
INT, NUM, STR, BOOL = "integer", "number", "string", "boolean"
BODY_MODELS: tuple[type[BaseModel], ...] = (
    NewAccountBody, CredentialsBody, PasswordChangeBody, NewKeyBody, PatchApiKeyBody, AddKeysBody, PatchKeyBody,
    PatchUserBody, PriceBody,
)
BODY_NOTES = {
    "CredentialsBody": "JSON form of the credentials; the OAuth2 password form (`username`, `password`) works too.",
    "NewKeyBody": "An optional name for the new key; the body may be empty.",
    "PatchApiKeyBody": "A Vault key's requests-per-minute limit: 0 = unlimited, null = the global default.",
    "AddKeysBody": "Upstream Gemini keys to add to the pool; keys already pooled are reported, not duplicated.",
    "PatchKeyBody": "Enable or disable an upstream key by hand, or relabel it.",
    "PatchUserBody": "Send `balance` (set) or `balance_delta` (add), not both, with a `reason`; "
                     "`is_active` and `is_admin` change the account. Admins cannot lock themselves out.",
    "PriceBody": "USD per 1M tokens; the `_above` prices apply to prompts longer than `tier_threshold` tokens.",
}
NATIVE_VERSIONS = ("v1beta", "v1")
NATIVE_ACTIONS = {  # action: (summary, request schema, response schema)
    "generateContent": ("Generate a response", "GenerateContentRequest", "GenerateContentResponse"),
    "streamGenerateContent": ("Generate a response, streamed", "GenerateContentRequest", "GenerateContentResponse"),
    "countTokens": ("Count a prompt's tokens", "CountTokensRequest", "CountTokensResponse"),
    "embedContent": ("Embed one content", "EmbedContentRequest", "EmbedContentResponse"),
    "batchEmbedContents": ("Embed several contents", "BatchEmbedContentsRequest", "BatchEmbedContentsResponse"),
}
PROXY_ERRORS = (400, 401, 402, 403, 413, 429, 502, 503, 504)
ERROR_MEANINGS = {
    400: "The request is not valid (for the JSON API, `fields` says which fields and why).",
    401: "Missing, invalid or revoked credentials.",
    402: "The caller's balance is spent.",
    403: "Not allowed: a deactivated account, a key not allowed here, or an admin-only route.",
    404: "Not found.",
    409: "A record with this identity already exists.",
    413: "The request body is larger than `VAULT_MAX_BODY_BYTES`.",
    429: "Too many requests (a rate limit, failed logins, or every upstream key cooling down); "
         "`Retry-After` says when to try again.",
    502: "The upstream failed on every key tried.",
    503: "No upstream key is configured, or every key is disabled.",
    504: "The upstream timed out.",
}
PATH_PARAMETERS = {
    "user_id": ({"type": INT}, "A user's id."),
    "key_id": ({"type": INT}, "A key's id."),
    "model": ({"type": STR}, "A model name such as `gemini-2.5-flash` (without `models/`)."),
    "path": ({"type": STR}, "The rest of the path, e.g. `chat/completions`; it may contain `/`."),
}
TAGS = [
    {"name": "accounts", "description": "Registration, access tokens and the caller's own account."},
    {"name": "api-keys", "description": "The caller's Vault keys, used to call the proxy."},
    {"name": "admin", "description": "Admins only: users, balances and the upstream key pool."},
    {"name": "billing", "description": "Admins only: model prices and the usage ledger."},
    {"name": "openai", "description": "OpenAI-compatible proxy, forwarded to Gemini's OpenAI endpoint. "
                                      "Errors use OpenAI's envelope."},
    {"name": "gemini", "description": "Native Gemini proxy. Errors use Google's envelope."},
    {"name": "operations", "description": "Health checks and this document."},
]
DESCRIPTION = """A self-hosted gateway for the Google Gemini API.

**JSON API** (`/auth/…`, `/api-keys/…`, `/admin/api/…`): send `Authorization: Bearer <access_token>`
from `POST /auth/token`, or use a logged-in browser session; with a session, requests that change
state also need `X-CSRFToken` (from `GET /auth/csrf-token`). Errors are
`{"error": {"code", "message", "fields"?}}`.

**Proxy** (`/v1beta/…`, `/v1/…`): send a Vault key from `POST /api-keys/` as `Authorization: Bearer`,
`x-goog-api-key` or `?key=`. Errors come in the caller's dialect: Google's
`{"error": {"code", "message", "status"}}` on native paths, OpenAI's `{"error": {"message", "type", "code"}}`
on OpenAI-compatible paths (and on `/v1/models` for Bearer callers)."""


def build_openapi(app: Flask) -> Schema:
    """The OpenAPI 3.1 document for `app`: the JSON API, the proxy and the operational routes."""
    document = {
        "openapi": "3.1.0",
        "info": {"title": "Gemini-Vault", "version": API_VERSION, "description": DESCRIPTION},
        "tags": TAGS,
        "paths": with_path_parameters(api_paths() | proxy_paths() | operations_paths(app)),
        "components": {
            "schemas": body_schemas() | account_schemas() | pool_schemas() | billing_schemas()
            | error_schemas() | gemini_schemas() | openai_schemas(),
            "securitySchemes": security_schemes(app.config.get("SESSION_COOKIE_NAME", "session")),
            "headers": {
                "RetryAfter": {"description": "Seconds until a retry can succeed.", "schema": {"type": INT}},
                "RequestId": {"description": "This request's id (the caller's `X-Request-Id` if sane), "
                                             "also on its usage record.", "schema": {"type": STR}},
            },
        },
    }
    return deepcopy(document)  # the parts built from module constants must not be shared with callers


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
    }


def api_key_fields() -> dict[str, Schema]:
    """The fields of `vault.jsonapi.api_key_json`: never the key itself."""
    return {
        "id": typed(INT), "name": typed(STR), "prefix": typed(STR, description="The key's visible start."),
        "created_at": moment(), "revoked_at": moment(nullable=True), "last_used_at": moment(nullable=True),
        "is_active": typed(BOOL), "request_count": typed(INT), "prompt_tokens": typed(INT),
        "output_tokens": typed(INT), "total_tokens": typed(INT), "spend": usd(), "spend_nano_usd": typed(INT),
        "rate_limit_rpm": typed(INT, nullable=True, description="Requests per minute; 0 = unlimited, "
                                                                "null = the global default."),
    }


def account_schemas() -> dict[str, Schema]:
    """Users, Vault keys and tokens."""
    adjustment = obj({"id": typed(INT), "kind": typed(STR), "amount": usd(), "admin_id": typed(INT, nullable=True),
                      "reason": typed(STR), "created_at": moment()})
    return {
        "User": obj(user_fields()),
        "UserDetail": obj(user_fields() | {
            "api_keys": array(ref("ApiKey")), "adjustments": array(ref("BalanceAdjustment")),
            "ledger_balance_nano_usd": typed(INT, description="The balance by the ledger; it differs only "
                                                              "while requests are in flight."),
        }),
        "BalanceAdjustment": adjustment,
        "ApiKey": obj(api_key_fields()),
        "NewApiKey": obj(api_key_fields() | {"key": typed(STR, description="The full key, shown this once only.")}),
        "Token": obj({"access_token": typed(STR), "token_type": typed(STR, enum=["bearer"]),
                      "expires_in": typed(INT, description="Seconds.")}),
        "CsrfToken": obj({"csrf_token": typed(STR)}),
    }


def pool_schemas() -> dict[str, Schema]:
    """Upstream keys with their health (`vault.admin.api.upstream_key_json`)."""
    fields = {
        "id": typed(INT), "key": typed(STR, description="Masked; the full key never leaves the Vault."),
        "label": typed(STR), "state": typed(STR, enum=["active", "disabled"]),
        "disabled_reason": typed(STR, nullable=True), "disabled_until": moment(nullable=True),
        "consecutive_failures": typed(INT), "last_error": typed(STR, nullable=True),
        "last_error_at": moment(nullable=True), "last_used_at": moment(nullable=True),
        "request_count": typed(INT), "failure_count": typed(INT),
        "cooldowns": array(obj({"model": typed(STR), "until": moment(), "reason": typed(STR)}),
                           description="Models this key is cooling down for."),
        "created_at": moment(),
    }
    return {
        "UpstreamKey": obj(fields),
        "UpstreamKeyAdded": obj(fields | {"created": typed(BOOL, description="False if it was already pooled.")}),
    }


def billing_schemas() -> dict[str, Schema]:
    """Prices (USD per 1M tokens) and the usage ledger."""
    rates = {"input": usd(), "output": usd(), "cached_input": usd(nullable=True)}
    return {
        "Price": obj({"model": typed(STR)} | rates | {
            "tier_threshold": typed(INT, nullable=True), "input_above": usd(nullable=True),
            "output_above": usd(nullable=True), "cached_input_above": usd(nullable=True), "updated_at": moment(),
        }),
        "PriceList": obj({"prices": array(ref("Price")),
                          "fallback": obj(rates, description="What models without a price are charged.")}),
        "UsageRecord": usage_record_schema(),
        "UsagePage": obj({"items": array(ref("UsageRecord")), "total": typed(INT), "page": typed(INT),
                          "per_page": typed(INT)}),
        "UsageSummary": obj({"rows": array(obj({
            "day": typed(STR, format="date"), "model": typed(STR), "requests": typed(INT),
            "prompt_tokens": typed(INT), "output_tokens": typed(INT), "total_tokens": typed(INT), "cost": usd(),
        }))}),
    }


def usage_record_schema() -> Schema:
    """The fields of `vault.usage_log.record_json`."""
    counts = ("prompt_tokens", "cached_tokens", "tool_prompt_tokens", "candidates_tokens", "thoughts_tokens",
              "output_tokens", "total_tokens")
    return obj({
        "id": typed(INT), "request_id": typed(STR), "user_id": typed(INT), "api_key_id": typed(INT, nullable=True),
        "upstream_key_id": typed(INT, nullable=True), "endpoint": typed(STR), "model": typed(STR),
        "priced_model": typed(STR), "status": typed(INT), "streamed": typed(BOOL),
        "ending": typed(STR, description="How the request ended: completed, refused, failed, disconnected, …"),
        **{name: typed(INT) for name in counts},
        "price": obj({"input": usd(), "output": usd(), "cached_input": usd()}), "cost": usd(),
        "cost_nano_usd": typed(INT), "hold": usd(), "first_byte_ms": typed(INT, nullable=True),
        "total_ms": typed(INT), "started_at": moment(), "finished_at": moment(), "error": typed(STR, nullable=True),
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
                                          "code": typed(STR, nullable=True)})}),
        "Health": obj({"status": typed(STR, enum=["ok", "unavailable"]), "database": typed(STR, enum=["up", "down"])}),
        "Readiness": obj({
            "status": typed(STR, enum=["ready", "unavailable"]), "database": typed(STR, enum=["up", "down"]),
            "redis": typed(STR, enum=["up", "down", "skipped"], description="`skipped` without REDIS_URL."),
            "upstream_keys": typed(STR, enum=["up", "down"], description="`up` if a key is usable."),
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


# Operations


PUBLIC: list = []
USER_READ = [{"bearerAuth": []}, {"sessionCookie": []}]
USER_WRITE = [{"bearerAuth": []}, {"sessionCookie": [], "csrfToken": []}]
VAULT_KEY = [{"vaultKeyBearer": []}, {"vaultKeyHeader": []}, {"vaultKeyQuery": []}]


def operation(op_id: str, summary: str, tag: str, responses: dict[str, Schema], **fields: Any) -> Schema:
    """One operation; `fields` adds requestBody, parameters, security or description."""
    return {"operationId": op_id, "summary": summary, "tags": [tag], **fields, "responses": responses}


def reply(description: str, schema: Schema | None = None, media: str = "application/json", **fields: Any) -> Schema:
    """A response object; no schema means no body."""
    content = {} if schema is None else {"content": {media: {"schema": schema}}}
    return {"description": description, **content, **fields}


def errors(envelope: Schema, *statuses: int) -> dict[str, Schema]:
    """Error responses with one envelope schema."""
    retry = {"headers": {"Retry-After": {"$ref": "#/components/headers/RetryAfter"}}}
    return {str(status): reply(ERROR_MEANINGS[status], envelope, **(retry if status == 429 else {}))
            for status in sorted(statuses)}


def json_body(model: type[BaseModel] | str, required: bool = True) -> Schema:
    """A JSON request body of a component schema."""
    name = model if isinstance(model, str) else model.__name__
    return {"required": required, "content": {"application/json": {"schema": ref(name)}}}


def api(op_id: str, summary: str, tag: str, ok: tuple[int, Schema], *statuses: int, **fields: Any) -> Schema:
    """A JSON API operation: success `ok` plus errors in the API envelope."""
    fields.setdefault("security", USER_READ)
    return operation(op_id, summary, tag, {str(ok[0]): ok[1]} | errors(ref("Error"), *statuses), **fields)


def api_paths() -> dict[str, Schema]:
    """The JSON API: accounts, Vault keys, admin and billing."""
    return account_paths() | admin_paths() | billing_paths()


def account_paths() -> dict[str, Schema]:
    """`/auth/…` and `/api-keys/…`."""
    user, done = reply("The user.", ref("User")), reply("Done.")
    credentials = json_body(CredentialsBody)
    credentials["content"]["application/x-www-form-urlencoded"] = {"schema": {
        "type": "object", "required": ["username", "password"], "properties": {
            "username": typed(STR, description="The email."), "password": typed(STR),
            "grant_type": typed(STR, enum=["password"])}}}
    return {
        "/auth/users/": {"post": api("register", "Register an account", "accounts", (201, user), 400, 409, 413,
                                     requestBody=json_body(NewAccountBody), security=PUBLIC)},
        "/auth/token": {"post": api("issueToken", "Exchange credentials for an access token", "accounts",
                                    (200, reply("A bearer token.", ref("Token"))), 400, 401, 403, 413, 429,
                                    requestBody=credentials, security=PUBLIC)},
        "/auth/users/me": {"get": api("me", "The caller", "accounts", (200, user), 401)},
        "/auth/users/me/password": {"post": api(
            "changePassword", "Change the caller's password (ends every session and token)", "accounts",
            (204, done), 400, 401, 413, requestBody=json_body(PasswordChangeBody), security=USER_WRITE)},
        "/auth/logout": {"post": api("logoutEverywhere", "End every session and token of the caller", "accounts",
                                     (204, done), 400, 401, security=USER_WRITE)},
        "/auth/csrf-token": {"get": api("csrfToken", "A CSRF token for session callers", "accounts",
                                        (200, reply("The token.", ref("CsrfToken"))), security=PUBLIC)},
        "/api-keys/": {
            "get": api("listApiKeys", "The caller's keys with usage (never the keys)", "api-keys",
                       (200, reply("The keys.", array(ref("ApiKey")))), 401),
            "post": api("createApiKey", "Mint a Vault key (shown in full this once)", "api-keys",
                        (201, reply("The new key.", ref("NewApiKey"))), 400, 401, 413,
                        requestBody=json_body(NewKeyBody, required=False), security=USER_WRITE),
        },
        "/api-keys/{key_id}": {"delete": api("revokeApiKey", "Revoke a key; it stops working at once", "api-keys",
                                             (204, done), 400, 401, 404, security=USER_WRITE)},
    }


def admin_paths() -> dict[str, Schema]:
    """`/admin/api/` users and upstream keys."""
    key, done = reply("The key.", ref("UpstreamKey")), reply("Done.")
    return {
        "/admin/api/users": {"get": api("listUsers", "Every user with balance and usage", "admin",
                                        (200, reply("The users.", array(ref("User")))), 401, 403)},
        "/admin/api/users/{user_id}": {
            "get": api("showUser", "A user with their keys and balance ledger", "admin",
                       (200, reply("The user.", ref("UserDetail"))), 401, 403, 404),
            "patch": api("updateUser", "Change a user's balance, activation or role", "admin",
                         (200, reply("The user.", ref("User"))), 400, 401, 403, 404, 413,
                         requestBody=json_body(PatchUserBody), security=USER_WRITE),
        },
        "/admin/api/api-keys/{key_id}": {"patch": api(
            "updateApiKey", "Set a Vault key's rate limit", "admin", (200, reply("The key.", ref("ApiKey"))),
            400, 401, 403, 404, 413, requestBody=json_body(PatchApiKeyBody), security=USER_WRITE)},
        "/admin/api/upstream-keys": {
            "get": api("listUpstreamKeys", "The upstream key pool with health", "admin",
                       (200, reply("The pool.", array(ref("UpstreamKey")))), 401, 403),
            "post": api("addUpstreamKeys", "Add upstream keys to the pool", "admin",
                        (201, reply("One entry per key sent.", array(ref("UpstreamKeyAdded")))), 400, 401, 403, 413,
                        requestBody=json_body(AddKeysBody), security=USER_WRITE),
        },
        "/admin/api/upstream-keys/{key_id}": {
            "patch": api("updateUpstreamKey", "Enable, disable or relabel an upstream key", "admin", (200, key),
                         400, 401, 403, 404, 413, requestBody=json_body(PatchKeyBody), security=USER_WRITE),
            "delete": api("deleteUpstreamKey", "Remove an upstream key from the pool", "admin", (204, done),
                          400, 401, 403, 404, security=USER_WRITE),
        },
    }


def billing_paths() -> dict[str, Schema]:
    """`/admin/api/` prices and usage."""
    price, done = reply("The price.", ref("Price")), reply("Done.")
    filters = query_parameters(UsageQuery)
    return {
        "/admin/api/prices": {"get": api("listPrices", "Every model price and the fallback", "billing",
                                         (200, reply("The prices.", ref("PriceList"))), 401, 403)},
        "/admin/api/prices/{model}": {
            "get": api("showPrice", "A model's price", "billing", (200, price), 401, 403, 404),
            "put": api("putPrice", "Create or replace a model's price", "billing", (200, price), 400, 401, 403, 413,
                       requestBody=json_body(PriceBody), security=USER_WRITE),
            "delete": api("deletePrice", "Remove a model's price (the fallback applies)", "billing", (204, done),
                          400, 401, 403, 404, security=USER_WRITE),
        },
        "/admin/api/usage": {"get": api("listUsage", "Usage records, newest first", "billing",
                                        (200, reply("A page of records.", ref("UsagePage"))), 400, 401, 403,
                                        parameters=filters)},
        "/admin/api/usage/summary": {"get": api(
            "usageSummary", "Requests, tokens and cost per UTC day and model", "billing",
            (200, reply("The rows.", ref("UsageSummary"))), 400, 401, 403,
            parameters=[p for p in filters if p["name"] not in ("page", "per_page")])},
    }


def query_parameters(model: type[BaseModel]) -> list[Schema]:
    """Optional query parameters from a pydantic model's fields (null dropped: absent means any)."""
    properties = model.model_json_schema()["properties"]
    return [{"name": name, "in": "query", "required": False, "schema": without_null(schema)}
            for name, schema in properties.items()]


def without_null(schema: Schema) -> Schema:
    """`schema` with a `null` alternative of `anyOf` removed."""
    options = [option for option in schema.get("anyOf", []) if option != {"type": "null"}]
    rest = {key: value for key, value in schema.items() if key not in ("anyOf", "default", "title")}
    if len(options) == 1:
        return options[0] | rest
    return rest | ({"anyOf": options} if options else {})


def proxy(op_id: str, summary: str, tag: str, ok: Schema, envelope: Schema,
          statuses: tuple[int, ...] = PROXY_ERRORS, **fields: Any) -> Schema:
    """A proxied operation: Vault-key auth, errors in the path's dialect."""
    ok = ok | {"headers": {"X-Request-Id": {"$ref": "#/components/headers/RequestId"}}}
    return operation(op_id, summary, tag, {"200": ok} | errors(envelope, *statuses), security=VAULT_KEY, **fields)


def either(*names: str) -> Schema:
    """One of several component schemas."""
    return {"anyOf": [ref(name) for name in names]}


def proxy_paths() -> dict[str, Schema]:
    """Every proxied path: native Gemini under both versions, and the OpenAI-compatible ones."""
    paths: dict[str, Schema] = {}
    for version in NATIVE_VERSIONS:
        paths |= native_paths(version)
    return paths | openai_paths()


def native_paths(version: str) -> dict[str, Schema]:
    """`/{version}/models…`; the model routes of `/v1/` also serve the openai SDK."""
    if version == "v1":
        listing, model = either("ModelList", "OpenAIModelList"), either("Model", "OpenAIModel")
        envelope = either("GoogleError", "OpenAIError")
        fields = {"description": "A Bearer caller (the openai SDK) gets OpenAI's shapes; others get Gemini's."}
    else:
        listing, model, envelope, fields = ref("ModelList"), ref("Model"), ref("GoogleError"), {}
    paths = {
        f"/{version}/models": {"get": proxy(f"{version}.listModels", "List models", "gemini",
                                            reply("The models.", listing), envelope, **fields)},
        f"/{version}/models/{{model}}": {"get": proxy(f"{version}.getModel", "Get a model", "gemini",
                                                      reply("The model.", model), envelope, (*PROXY_ERRORS, 404),
                                                      **fields)},
    }
    for action in NATIVE_ACTIONS:
        paths[f"/{version}/models/{{model}}:{action}"] = {"post": native_action(version, action)}
    return paths


def native_action(version: str, action: str) -> Schema:
    """`POST /{version}/models/{model}:{action}`."""
    summary, request, answer = NATIVE_ACTIONS[action]
    fields: dict[str, Any] = {"requestBody": json_body(request)}
    ok = reply("Gemini's answer.", ref(answer))
    if action == "streamGenerateContent":
        fields["parameters"] = [{"name": "alt", "in": "query", "required": False, "schema": typed(STR, enum=["sse"]),
                                 "description": "`sse` for server-sent events; otherwise a streamed JSON array."}]
        ok = {"description": "Chunks as the upstream sends them.", "content": {
            "application/json": {"schema": array(ref(answer))},
            "text/event-stream": {"schema": typed(STR, description="`data: <GenerateContentResponse>` events.")},
        }}
    return proxy(f"{version}.{action}", summary, "gemini", ok, ref("GoogleError"), **fields)


def openai_paths() -> dict[str, Schema]:
    """The OpenAI-compatible paths, and Gemini's own OpenAI base passed through."""
    envelope = ref("OpenAIError")
    chat_ok = {"description": "The answer; with `\"stream\": true`, server-sent chunks ending in `data: [DONE]`.",
               "content": {"application/json": {"schema": ref("ChatCompletion")},
                           "text/event-stream": {"schema": typed(STR, description="`data: <chunk>` events.")}}}
    chat = {"requestBody": json_body("ChatCompletionRequest")}
    embed = {"requestBody": json_body("EmbeddingsRequest")}
    vectors = reply("The vectors.", ref("EmbeddingsResponse"))
    return {
        "/v1/chat/completions": {"post": proxy("chatCompletions", "Chat, whole or streamed", "openai", chat_ok,
                                               envelope, **chat)},
        "/v1/embeddings": {"post": proxy("embeddings", "Embed texts", "openai", vectors, envelope, **embed)},
        "/v1beta/openai/chat/completions": {"post": proxy("openai.chatCompletions", "Chat (Gemini's OpenAI base)",
                                                          "openai", chat_ok, envelope, **chat)},
        "/v1beta/openai/embeddings": {"post": proxy("openai.embeddings", "Embed texts (Gemini's OpenAI base)",
                                                    "openai", vectors, envelope, **embed)},
        "/v1beta/openai/models": {"get": proxy("openai.listModels", "List models (Gemini's OpenAI base)", "openai",
                                               reply("The models.", ref("OpenAIModelList")), envelope)},
        "/v1beta/openai/{path}": {method: passthrough(method) for method in ("get", "post", "put", "patch", "delete")},
    }


def passthrough(method: str) -> Schema:
    """Any other call under Gemini's OpenAI-compatible base, forwarded as it is."""
    fields: dict[str, Any] = {}
    if method in ("post", "put", "patch"):
        fields["requestBody"] = {"required": False, "content": {"application/json": {"schema": {}}}}
    return proxy(f"openai.passthrough.{method}", "Anything else under Gemini's OpenAI base", "openai",
                 reply("Gemini's answer.", {}), ref("OpenAIError"), **fields)


def operations_paths(app: Flask) -> dict[str, Schema]:
    """Probes, metrics and this document; each probe only where the app has it."""
    routes = {rule.rule for rule in app.url_map.iter_rules()}
    probes = {
        "/healthz": operation("healthz", "Liveness and a database round trip", "operations", {
            "200": reply("Serving, and the database answers.", ref("Health")),
            "503": reply("The database is down.", ref("Health"))}, security=PUBLIC),
        "/readyz": operation("readyz", "Readiness: database, Redis (if configured), a usable upstream key",
                             "operations", {"200": reply("Ready for traffic.", ref("Readiness")),
                                            "503": reply("Not ready; the body says what is down.", ref("Readiness"))},
                             security=PUBLIC),
        "/metrics": operation("metrics", "Prometheus metrics of every worker", "operations", {
            "200": reply("The Prometheus text format.", typed(STR), media="text/plain")}, security=PUBLIC),
    }
    paths = {path: {"get": probe} for path, probe in probes.items() if path in routes}
    paths["/openapi.json"] = {"get": operation("openapi", "This document", "operations",
                                               {"200": reply("OpenAPI 3.1.", {"type": "object"})}, security=PUBLIC)}
    return paths


def with_path_parameters(paths: dict[str, Schema]) -> dict[str, Schema]:
    """`paths` with each templated path item declaring its path parameters."""
    for template, item in paths.items():
        names = re.findall(r"\{(\w+)\}", template)
        if names:
            item["parameters"] = [{"name": name, "in": "path", "required": True, "schema": PATH_PARAMETERS[name][0],
                                   "description": PATH_PARAMETERS[name][1]} for name in names]
    return paths
