"""Operations of the OpenAPI document: the JSON API, the proxy and the probes."""

from typing import Any

from flask import Flask
from pydantic import BaseModel

from vault.admin.api import AddKeysBody, PatchApiKeyBody, PatchKeyBody, PatchUserBody
from vault.admin.billing_api import PriceBody, UsageQuery
from vault.admin.invites_api import NewInviteBody
from vault.auth.api import CredentialsBody, PasswordChangeBody, RegisterBody
from vault.dashboard.api import KeyPolicyBody, NewKeyBody
from vault.openapi.schemas import INT, STR, Schema, array, ref, typed

NATIVE_VERSIONS = ("v1beta", "v1")
NATIVE_ACTIONS = {  # action: (summary, request schema, response schema)
    "generateContent": ("Generate a response", "GenerateContentRequest", "GenerateContentResponse"),
    "streamGenerateContent": ("Generate a response, streamed", "GenerateContentRequest", "GenerateContentResponse"),
    "countTokens": ("Count a prompt's tokens", "CountTokensRequest", "CountTokensResponse"),
    "embedContent": ("Embed one content", "EmbedContentRequest", "EmbedContentResponse"),
    "batchEmbedContents": ("Embed several contents", "BatchEmbedContentsRequest", "BatchEmbedContentsResponse"),
}
PROXY_ERRORS = (400, 401, 402, 403, 405, 408, 413, 415, 429, 502, 503, 504)
ERROR_MEANINGS = {
    400: "The request is not valid (for the JSON API, `fields` says which fields and why).",
    401: "Missing, invalid or revoked credentials.",
    402: "The caller's balance is spent, or cannot cover the request's input and the smallest output cap "
         "(`VAULT_MIN_OUTPUT_TOKENS`), or the key's `spend_cap` is reached for its period (`X-Vault-Policy`).",
    403: "Not allowed: a deactivated account, a key not allowed here (its `expires_at`, `allowed_models`, "
         "`visible_models` or `allowed_ips` policy, named in `X-Vault-Policy`), a key policy above the owner's "
         "limits (the message names the field), an admin-only route, or sign-up closed or needing a valid "
         "invite code.",
    404: "Not found.",
    409: "A record with this identity already exists, or the record can no longer change (a revoked key).",
    405: "The path is served, but not with this method (`Allow` names the one that is).",
    411: "An upload chunk without `Content-Length`.",
    408: "The request body did not arrive within `VAULT_BODY_TIMEOUT_SECONDS`.",
    413: "The request body is larger than `VAULT_MAX_BODY_BYTES`.",
    415: "The request body is not declared as JSON (`Content-Type: application/json`).",
    429: "Too many requests (a rate limit, or a key's `rate_limit_rpm`, `rate_limit_tpm` or `max_concurrency` "
         "named in `X-Vault-Policy`, failed logins, sign-ups from one address, or every upstream key "
         "cooling down); "
         "`Retry-After` says when to try again.",
    502: "The upstream failed on every key tried.",
    503: "No upstream key is configured, every key is disabled or resting after repeated upstream failures "
         "(`Retry-After` then says when the soonest is back), or the database is down.",
    504: "The upstream timed out.",
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
    return account_paths() | admin_paths() | invite_paths() | billing_paths()


def account_paths() -> dict[str, Schema]:
    """`/auth/…` and `/api-keys/…`."""
    user, done = reply("The user.", ref("User")), reply("Done.")
    credentials = json_body(CredentialsBody)
    credentials["content"]["application/x-www-form-urlencoded"] = {"schema": {
        "type": "object", "required": ["username", "password"], "properties": {
            "username": typed(STR, description="The email."), "password": typed(STR),
            "grant_type": typed(STR, enum=["password"])}}}
    return {
        "/auth/users/": {"post": api(
            "register", "Register an account", "accounts", (201, user), 400, 403, 409, 413, 429,
            requestBody=json_body(RegisterBody), security=PUBLIC,
            description="`VAULT_REGISTRATION` decides: `open` to anyone, `invite` with a valid `invite_code` "
                        "(single-use), `closed` to no one (403). Sign-ups per client address are limited "
                        "(`VAULT_SIGNUP_PER_HOUR`, 429).")},
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
            "get": api("listApiKeys", "The caller's keys with usage, policy and standing (never the keys)",
                       "api-keys", (200, reply("The keys.", array(ref("ApiKey")))), 401),
            "post": api("createApiKey", "Mint a Vault key (shown in full this once), with its policy", "api-keys",
                        (201, reply("The new key.", ref("NewApiKey"))), 400, 401, 403, 413,
                        requestBody=json_body(NewKeyBody, required=False), security=USER_WRITE),
        },
        "/api-keys/{key_id}": {
            "patch": api("updateApiKeyPolicy", "Change one of the caller's keys' policy", "api-keys",
                         (200, reply("The key.", ref("ApiKey"))), 400, 401, 403, 404, 409, 413,
                         requestBody=json_body(KeyPolicyBody), security=USER_WRITE,
                         description="Within the account's limits (403 naming the field otherwise). Someone "
                                     "else's key is 404; a revoked key is 409."),
            "delete": api("revokeApiKey", "Revoke a key; it stops working at once", "api-keys",
                          (204, done), 400, 401, 404, security=USER_WRITE),
        },
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
            "patch": api("updateUser", "Change a user's balance, activation, role or limits", "admin",
                         (200, reply("The user.", ref("User"))), 400, 401, 403, 404, 413,
                         requestBody=json_body(PatchUserBody), security=USER_WRITE),
        },
        "/admin/api/users/{user_id}/resources": {"get": api(
            "listUserResources", "A user's files and cached contents, with their state and storage", "admin",
            (200, reply("The resources, newest first, and storage used.", ref("UserResources"))), 401, 403, 404,
            description="Every record, deleted and expired ones too. A resource is usable only through the "
                        "upstream key holding it: `key_disabled` answers 409 until an admin enables that key "
                        "again, `key_removed` is gone for good. Any of the user's active Vault keys may use "
                        "a `live` one, whichever key made it.")},
        "/admin/api/api-keys/{key_id}": {"patch": api(
            "updateApiKey", "Change any Vault key's policy", "admin", (200, reply("The key.", ref("ApiKey"))),
            400, 401, 403, 404, 409, 413, requestBody=json_body(PatchApiKeyBody), security=USER_WRITE,
            description="Never above the owner's limits (403 naming the field): raise those first. A revoked key "
                        "is 409.")},
        "/admin/api/upstream-keys": {
            "get": api("listUpstreamKeys", "The upstream key pool with health", "admin",
                       (200, reply("The pool.", array(ref("UpstreamKey")))), 401, 403,
                       parameters=[{"name": "include_deleted", "in": "query", "required": False,
                                    "schema": typed(STR, enum=["0", "1"]),
                                    "description": "`1` also lists the keys an admin deleted."}]),
            "post": api("addUpstreamKeys", "Add upstream keys to the pool", "admin",
                        (201, reply("One entry per key sent.", array(ref("UpstreamKeyAdded")))), 400, 401, 403, 413,
                        requestBody=json_body(AddKeysBody), security=USER_WRITE),
        },
        "/admin/api/upstream-keys/{key_id}": {
            "patch": api("updateUpstreamKey", "Enable, disable or relabel an upstream key, or set its proxy", "admin",
                         (200, key), 400, 401, 403, 404, 413, requestBody=json_body(PatchKeyBody), security=USER_WRITE),
            "delete": api("deleteUpstreamKey", "Remove an upstream key from the pool", "admin", (204, done),
                          400, 401, 403, 404, security=USER_WRITE,
                          description="Soft: the key leaves the rotation at once and its secret is wiped; usage "
                                      "records keep its id and requests in flight on it still settle. Adding the "
                                      "same key again revives it. A deleted key is 404 here."),
        },
    }


def invite_paths() -> dict[str, Schema]:
    """`/admin/api/invites`."""
    return {
        "/admin/api/invites": {
            "get": api("listInvites", "Every invite with its state (never the codes)", "admin",
                       (200, reply("The invites.", array(ref("Invite")))), 401, 403),
            "post": api("createInvite", "Create a single-use invite (its code is shown this once)", "admin",
                        (201, reply("The new invite with its code and sign-up link.", ref("NewInvite"))),
                        400, 401, 403, 413, requestBody=json_body(NewInviteBody, required=False),
                        security=USER_WRITE),
        },
        "/admin/api/invites/{invite_id}": {"delete": api(
            "revokeInvite", "Revoke an unused invite (a used one stays on record: 409)", "admin",
            (204, reply("Done.")), 400, 401, 403, 404, 409, security=USER_WRITE)},
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
        "/admin/api/models": {"get": api("listModels", "Every model's token limits and routing settings", "billing",
                                         (200, reply("The model table.", ref("ModelLimitList"))), 401, 403)},
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
    ok = ok | {"headers": {"X-Request-Id": {"$ref": "#/components/headers/RequestId"},
                           "X-Vault-Output-Cap": {"$ref": "#/components/headers/OutputCap"}}}
    return operation(op_id, summary, tag, {"200": ok} | errors(envelope, *statuses), security=VAULT_KEY, **fields)


def either(*names: str) -> Schema:
    """One of several component schemas."""
    return {"anyOf": [ref(name) for name in names]}


def proxy_paths() -> dict[str, Schema]:
    """Every proxied path: native Gemini under both versions, files and caches, and the OpenAI-compatible ones."""
    paths: dict[str, Schema] = {}
    for version in NATIVE_VERSIONS:
        paths |= native_paths(version) | resource_paths(version)
    return paths | openai_paths()


def resource_paths(version: str) -> dict[str, Schema]:
    """Files, uploads and cached contents: the caller's own only, each sent with the key that holds it."""
    envelope, owned = ref("GoogleError"), (*PROXY_ERRORS, 404, 409)
    paging = [{"name": name, "in": "query", "required": False, "schema": typed(kind)}
              for name, kind in (("pageSize", INT), ("pageToken", STR))]
    mask = [{"name": "updateMask", "in": "query", "required": True,
             "schema": typed(STR, enum=["ttl", "expireTime"])}]
    upload = [{"name": name, "in": "query", "required": False, "schema": typed(STR), "description": text}
              for name, text in (("uploadType", "`multipart` sends metadata and bytes in one body."),
                                 ("upload_id", "The token of the upload URL a resumable start returned: with it "
                                               "no API key is sent (the token is the credential)."))]
    file_ok, cache_ok = reply("The file.", ref("File")), reply("The cached content.", ref("CachedContent"))
    empty = reply("Deleted.", {"type": "object"})
    files, caches = f"/{version}/files", f"/{version}/cachedContents"
    return {
        f"/upload/{version}/files": {"post": proxy(
            f"{version}.uploadFile", "Upload a file (resumable start, its chunks, or multipart)", "files",
            reply("A resumable start: `X-Goog-Upload-URL` (a Vault URL) and `X-Goog-Upload-Status: active`; "
                  "a chunk: its status; the last chunk or a multipart upload: `{\"file\": File}`.",
                  {"type": "object"}), envelope, (*PROXY_ERRORS, 404, 409, 411), parameters=upload)},
        files: {"get": proxy(f"{version}.listFiles", "List your files", "files",
                             reply("A page of your files.", ref("FileList")), envelope, parameters=paging)},
        f"{files}/{{file}}": {
            "get": proxy(f"{version}.getFile", "Get one of your files", "files", file_ok, envelope, owned),
            "delete": proxy(f"{version}.deleteFile", "Delete one of your files", "files", empty, envelope, owned)},
        caches: {
            "get": proxy(f"{version}.listCachedContents", "List your cached contents", "files",
                         reply("A page of your cached contents.", ref("CachedContentList")), envelope,
                         parameters=paging),
            "post": proxy(f"{version}.createCachedContent", "Create a cached content (storage is charged)", "files",
                          cache_ok, envelope, owned, requestBody=json_body("CachedContent"))},
        f"{caches}/{{cache}}": {
            "get": proxy(f"{version}.getCachedContent", "Get one of your cached contents", "files", cache_ok,
                         envelope, owned),
            "patch": proxy(f"{version}.updateCachedContent", "Change a cached content's expiry", "files", cache_ok,
                           envelope, owned, parameters=mask, requestBody=json_body("CachedContent")),
            "delete": proxy(f"{version}.deleteCachedContent", "Delete one of your cached contents", "files", empty,
                            envelope, owned)},
    }


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
    """The OpenAI-compatible paths, under `/v1/` and under Gemini's own OpenAI base."""
    envelope = ref("OpenAIError")
    chat_ok = {"description": "The answer; with `\"stream\": true`, server-sent chunks ending in `data: [DONE]`.",
               "content": {"application/json": {"schema": ref("ChatCompletion")},
                           "text/event-stream": {"schema": typed(STR, description="`data: <chunk>` events.")}}}
    chat = {"requestBody": json_body("ChatCompletionRequest")}
    embed = {"requestBody": json_body("EmbeddingsRequest")}
    vectors = reply("The vectors.", ref("EmbeddingsResponse"))
    images = {"requestBody": json_body("ImagesRequest"),
              "description": "Imagen through Gemini's OpenAI-compatible images endpoint, billed per image returned "
                             "at the model's image price (a model without one: 400). Only `model`, `prompt`, `n` "
                             "(1-4), `size` and `response_format` (`b64_json`) are accepted; never streamed."}
    pictures = reply("The images, base64-encoded.", ref("ImagesResponse"))
    return {
        "/v1/chat/completions": {"post": proxy("chatCompletions", "Chat, whole or streamed", "openai", chat_ok,
                                               envelope, **chat)},
        "/v1/embeddings": {"post": proxy("embeddings", "Embed texts", "openai", vectors, envelope, **embed)},
        "/v1/images/generations": {"post": proxy("imagesGenerations", "Generate images", "openai", pictures,
                                                 envelope, **images)},
        "/v1beta/openai/chat/completions": {"post": proxy("openai.chatCompletions", "Chat (Gemini's OpenAI base)",
                                                          "openai", chat_ok, envelope, **chat)},
        "/v1beta/openai/embeddings": {"post": proxy("openai.embeddings", "Embed texts (Gemini's OpenAI base)",
                                                    "openai", vectors, envelope, **embed)},
        "/v1beta/openai/images/generations": {"post": proxy("openai.imagesGenerations",
                                                             "Generate images (Gemini's OpenAI base)", "openai",
                                                             pictures, envelope, **images)},
        "/v1beta/openai/models": {"get": proxy("openai.listModels", "List models (Gemini's OpenAI base)", "openai",
                                               reply("The models.", ref("OpenAIModelList")), envelope)},
        "/v1beta/openai/models/{model}": {"get": proxy("openai.getModel", "Get a model (Gemini's OpenAI base)",
                                                       "openai", reply("The model.", ref("OpenAIModel")), envelope,
                                                       (*PROXY_ERRORS, 404))},
    }


def operations_paths(app: Flask) -> dict[str, Schema]:
    """Probes, metrics and this document; each probe only where the app has it."""
    routes = {rule.rule for rule in app.url_map.iter_rules()}
    probes = {
        "/healthz": operation("healthz", "Liveness and a database round trip", "operations", {
            "200": reply("Serving, and the database answers.", ref("Health")),
            "503": reply("The database is down.", ref("Health"))}, security=PUBLIC),
        "/readyz": operation("readyz", "Readiness: the database, and a key that can serve some model",
                             "operations", {"200": reply("Ready for traffic.", ref("Readiness")),
                                            "503": reply("Not ready; the body says what is down.", ref("Readiness"))},
                             security=PUBLIC),
        "/metrics": operation("metrics", "Prometheus metrics of every worker", "operations", {
            "200": reply("The Prometheus text format.", typed(STR), media="text/plain"),
            "401": reply("`VAULT_METRICS_TOKEN` is set and the request did not present it as a Bearer token.",
                         ref("Error"))}, security=PUBLIC),
    }
    paths = {path: {"get": probe} for path, probe in probes.items() if path in routes}
    paths["/openapi.json"] = {"get": operation("openapi", "This document", "operations",
                                               {"200": reply("OpenAPI 3.1.", {"type": "object"})}, security=PUBLIC)}
    return paths


