"""The OpenAPI 3.1 document of the JSON API and the proxy, served at `/openapi.json`.

Request bodies are the pydantic models the views validate with, so they cannot drift.
Response shapes restate `user_json`, `api_key_json`, `upstream_key_json`, `price_json`,
`adjustment_json`, `record_json` and `user_resources_json`; tests/test_openapi.py checks them against live
responses and checks that every API route in `app.url_map` is described here. Gemini's and
OpenAI's own payloads are only sketched: the proxy passes them through as they are.
"""

import re
from copy import deepcopy

from flask import Flask

from vault.openapi.alerts import alert_paths, alert_schemas
from vault.openapi.audit import audit_paths, audit_schemas
from vault.openapi.codes import code_paths, code_schemas
from vault.openapi.paths import api_paths, operations_paths, proxy_paths
from vault.openapi.pool import pool_page_paths, pool_page_schemas
from vault.openapi.routing import routing_paths, routing_schemas
from vault.openapi.schemas import (
    INT,
    STR,
    Schema,
    account_schemas,
    billing_schemas,
    body_schemas,
    error_schemas,
    gemini_schemas,
    openai_schemas,
    pool_schemas,
    resource_schemas,
    security_schemes,
)

API_VERSION = "0.1.0"  # the project version in pyproject.toml; the test keeps them equal
PATH_PARAMETERS = {
    "user_id": ({"type": INT}, "A user's id."),
    "key_id": ({"type": INT}, "A key's id."),
    "invite_id": ({"type": INT}, "An invite's id."),
    "job_id": ({"type": STR}, "A background job's id (from `POST /admin/api/upstream-keys/check`)."),
    "model": ({"type": STR}, "A model name such as `gemini-2.5-flash` (without `models/`)."),
    "alias": ({"type": STR}, "A model alias such as `fast` (without `models/`)."),
    "path": ({"type": STR}, "The rest of the path, e.g. `chat/completions`; it may contain `/`."),
    "file": ({"type": STR}, "A file's id (`abc123` of `files/abc123`)."),
    "cache": ({"type": STR}, "A cached content's id (`xyz` of `cachedContents/xyz`)."),
}
TAGS = [
    {"name": "accounts", "description": "Registration, access tokens and the caller's own account."},
    {"name": "api-keys", "description": "The caller's Vault keys, used to call the proxy."},
    {"name": "admin", "description": "Admins only: users, balances, invites and the upstream key pool."},
    {"name": "billing", "description": "Admins only: model prices and the usage ledger."},
    {"name": "openai", "description": "OpenAI-compatible proxy, forwarded to Gemini's OpenAI endpoint. "
                                      "Errors use OpenAI's envelope."},
    {"name": "gemini", "description": "Native Gemini proxy. Errors use Google's envelope."},
    {"name": "files", "description": "Files and cached contents through the Vault: each user's own, sent with the "
                                     "upstream key that holds them. See README, Files and caches."},
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
        "paths": with_path_parameters(api_paths() | routing_paths() | audit_paths() | code_paths() | proxy_paths()
                                      | alert_paths() | pool_page_paths() | operations_paths(app)),
        "components": {
            "schemas": body_schemas() | account_schemas() | pool_schemas() | resource_schemas() | billing_schemas()
            | error_schemas() | gemini_schemas() | openai_schemas() | routing_schemas() | audit_schemas()
            | code_schemas() | alert_schemas() | pool_page_schemas(),
            "securitySchemes": security_schemes(app.config.get("SESSION_COOKIE_NAME", "session")),
            "headers": {
                "RetryAfter": {"description": "Seconds until a retry can succeed.", "schema": {"type": INT}},
                "RequestId": {"description": "This request's id (the caller's `X-Request-Id` if sane), "
                                             "also on its usage record.", "schema": {"type": STR}},
                "OutputCap": {"description": "Only when the balance could not cover the output the request "
                                             "allows: the output cap (tokens per candidate) the Vault sent "
                                             "upstream instead, as `maxOutputTokens` / `max_tokens`.",
                              "schema": {"type": INT}},
            },
        },
    }
    return deepcopy(document)  # the parts built from module constants must not be shared with callers



def with_path_parameters(paths: dict[str, Schema]) -> dict[str, Schema]:
    """`paths` with each templated path item declaring its path parameters."""
    for template, item in paths.items():
        names = re.findall(r"\{(\w+)\}", template)
        if names:
            item["parameters"] = [{"name": name, "in": "path", "required": True, "schema": PATH_PARAMETERS[name][0],
                                   "description": PATH_PARAMETERS[name][1]} for name in names]
    return paths
