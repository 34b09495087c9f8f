"""The OpenAPI document and the docs page: valid OpenAPI 3.1, in step with the routes and the
responses the views really send, served without auth, rendered with vendored assets."""

import json
import re
import tomllib
from collections.abc import Iterator
from itertools import product
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Rule

from vault.admin.api import PatchUserBody
from vault.billing.catalog import seed_models
from vault.extensions import db
from vault.openapi import API_VERSION, build_openapi

PROJECT_ROOT = Path(__file__).resolve().parent.parent
OPERATION_KEYS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
JSON_PREFIXES = ("/auth/", "/api-keys", "/api/", "/admin/api/")
PAGE_BLUEPRINTS = ("auth", "dashboard", "admin")
CONVERTER = re.compile(r"<(?:(?P<converter>\w+)(?:\((?P<args>[^)]*)\))?:)?(?P<name>\w+)>")


def is_page(rule: Rule) -> bool:
    """HTML pages and static files; every other route is API and must be documented."""
    if rule.endpoint in ("static", "docs.docs_page"):
        return True
    return rule.endpoint.partition(".")[0] in PAGE_BLUEPRINTS and not rule.rule.startswith(JSON_PREFIXES)


def any_options(args: str) -> list[str]:
    """The literals of an `any(a, b)` converter."""
    return [option.strip().strip("'\"") for option in args.split(",")]


def templates(rule: str, fixed: dict[str, str] | None = None) -> list[str]:
    """OpenAPI path templates of a Flask rule, parameters written `{}` (OpenAPI ignores their names).

    `<int:id>`, `<model>`, `<path:rest>` become `{}`; `<any(v1beta, v1):version>` becomes
    one template per literal, or only the one in `fixed[version]`.
    """
    fixed = fixed or {}
    pieces: list[list[str]] = []
    position = 0
    for match in CONVERTER.finditer(rule):
        pieces.append([rule[position:match.start()]])
        if match["converter"] == "any":
            pieces.append([fixed[match["name"]]] if match["name"] in fixed else any_options(match["args"]))
        else:
            pieces.append(["{}"])
        position = match.end()
    pieces.append([rule[position:]])
    return ["".join(choice) for choice in product(*pieces)]


def api_routes(app) -> set[tuple[str, str]]:
    """(template, METHOD) of every API route in the app."""
    return {
        (template, method)
        for rule in app.url_map.iter_rules() if not is_page(rule)
        for template in templates(rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def operations(document: dict) -> Iterator[tuple[str, str, dict]]:
    """(path, method, operation) of every documented operation."""
    for path, item in document["paths"].items():
        for method in OPERATION_KEYS:
            if method in item:
                yield path, method, item[method]


def sample_url(path: str, document: dict) -> str:
    """`path` with each parameter filled in with a value of its type."""
    declared = {p["name"]: p["schema"] for p in document["paths"][path].get("parameters", [])}
    return re.sub(r"\{(\w+)\}", lambda m: "1" if declared[m[1]].get("type") == "integer" else "sample", path)


def routed(app, document: dict, path: str, method: str) -> tuple[Rule, str]:
    """The rule a documented operation reaches, and the route template it stands for."""
    try:
        rule, args = app.url_map.bind("localhost").match(sample_url(path, document), method.upper(), return_rule=True)
    except HTTPException as exc:
        pytest.fail(f"{method.upper()} {path} is documented but does not route: {exc!r}")
    (template,) = templates(rule.rule, fixed={k: v for k, v in args.items() if isinstance(v, str)})
    return rule, template


@pytest.fixture
def document(app) -> dict:
    return build_openapi(app)


def test_document_is_valid_openapi_3_1(document):
    assert document["openapi"].startswith("3.1.")
    validate(document, cls=OpenAPIV31SpecValidator)


def test_operation_ids_are_unique(document):
    ids = [operation["operationId"] for _, _, operation in operations(document)]
    assert len(ids) == len(set(ids))


def test_every_api_route_and_method_is_documented(app, document):
    """Each documented operation is sent through the app's own router; together they must reach every
    API route with every method (and each literal of an `any(...)` converter). Routing, not string
    comparison, is what lets `/v1beta/models/{model}:generateContent` stand for `<path:name>`."""
    documented = {(routed(app, document, path, method)[1], method.upper())
                  for path, method, _ in operations(document)}
    missing = api_routes(app) - documented
    assert not missing, f"routes missing from vault/openapi.py: {sorted(missing)}"


def test_every_documented_operation_is_an_api_route(app, document):
    for path, method, _ in operations(document):
        rule, _ = routed(app, document, path, method)
        assert not is_page(rule), f"{method.upper()} {path} reaches the page {rule.endpoint}"


@pytest.mark.parametrize(("rule", "expected"), [
    ("/api-keys/<int:key_id>", ["/api-keys/{}"]),
    ("/admin/api/prices/<model>", ["/admin/api/prices/{}"]),
    ("/v1beta/openai/<path:rest>", ["/v1beta/openai/{}"]),
    ("/<any(v1beta, v1):version>/models", ["/v1beta/models", "/v1/models"]),
    ("/<any(v1beta, v1):version>/models/<path:name>", ["/v1beta/models/{}", "/v1/models/{}"]),
])
def test_rule_templates(rule, expected):
    assert templates(rule) == expected


def test_both_native_versions_are_documented(document):
    for version in ("v1beta", "v1"):
        for action in ("generateContent", "streamGenerateContent", "countTokens", "embedContent",
                       "batchEmbedContents"):
            assert "post" in document["paths"][f"/{version}/models/{{model}}:{action}"]


def test_request_bodies_are_the_views_models(document):
    assert document["components"]["schemas"]["PatchUserBody"]["properties"].keys() == PatchUserBody.model_fields.keys()
    assert "$defs" not in json.dumps(document)


def test_version_matches_the_project():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    assert API_VERSION == project["version"]


def test_openapi_json_is_served_without_auth(client, document):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == json.loads(json.dumps(document))


def test_docs_page_uses_vendored_assets(client):
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="(/static/vendor/[^"]+)"', html)
    assert {asset.rsplit("/", 1)[1] for asset in assets} == {"swagger-ui.css", "swagger-ui-bundle.js"}
    assert '"/openapi.json"' in html
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html), "the docs page must not load from a CDN"
    for asset in assets:
        assert client.get(asset).status_code == 200, asset


def test_vendored_swagger_ui_keeps_its_license():
    vendor = PROJECT_ROOT / "static" / "vendor" / "swagger-ui-dist"
    assert "Apache License" in (vendor / "LICENSE").read_text()
    assert (vendor / "NOTICE").is_file()


# Responses the views really send, against the documented schemas. The test closes every
# object schema (no undocumented fields), so a field added to user_json & co. without the
# document fails here.


def closed(schema):
    """`schema` with every object that lists properties refusing others."""
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: closed(value) for key, value in schema.items()}
    if "properties" in result and "additionalProperties" not in result:
        result["additionalProperties"] = False
    return result


VAULT_SCHEMAS = ("User", "UserDetail", "BalanceAdjustment", "ApiKey", "NewApiKey", "Token", "CsrfToken",
                 "UpstreamKey", "UpstreamKeyAdded", "Price", "PriceList", "ModelLimits", "ModelLimitList",
                 "UsageRecord", "UsagePage", "UsageSummary", "Error", "GoogleError", "OpenAIError", "Health",
                 "Readiness")


@pytest.fixture
def check(document):
    """`check(response, path, method)`: the status is documented and the body fits its schema."""
    schemas = document["components"]["schemas"]
    components = {"schemas": {name: closed(schemas[name]) if name in VAULT_SCHEMAS else schemas[name]
                              for name in schemas}}

    def check_response(response, path: str, method: str) -> dict:
        responses = document["paths"][path][method]["responses"]
        assert str(response.status_code) in responses, f"{method} {path} answered an undocumented {response.status}"
        content = responses[str(response.status_code)].get("content")
        if content is None:
            assert response.get_data() == b""
            return {}
        schema = content[response.mimetype]["schema"]
        body = response.get_json() if response.is_json else response.get_data(as_text=True)
        Draft202012Validator({**schema, "components": components}).validate(body)
        return body

    return check_response


def test_live_responses_match_the_document(client, document, check, make_user, auth_headers):
    admin = auth_headers(make_user(email="admin@example.com", is_admin=True))
    check(client.get("/healthz"), "/healthz", "get")
    for probe in ("/readyz", "/metrics"):
        if probe in document["paths"]:
            check(client.get(probe), probe, "get")
    check(client.get("/auth/csrf-token"), "/auth/csrf-token", "get")
    check(client.post("/auth/users/", json={"email": "nope"}), "/auth/users/", "post")
    user = check(client.post("/auth/users/", json={"email": "ann@example.com", "password": "long enough pw"}),
                 "/auth/users/", "post")
    check(client.post("/auth/users/", json={"email": "ann@example.com", "password": "long enough pw"}),
          "/auth/users/", "post")
    token = check(client.post("/auth/token", data={"username": "ann@example.com", "password": "long enough pw"}),
                  "/auth/token", "post")
    ann = {"Authorization": f"Bearer {token['access_token']}"}
    check(client.get("/auth/users/me"), "/auth/users/me", "get")
    check(client.get("/auth/users/me", headers=ann), "/auth/users/me", "get")
    key = check(client.post("/api-keys/", json={"name": "laptop"}, headers=ann), "/api-keys/", "post")
    check(client.get("/admin/api/users", headers=ann), "/admin/api/users", "get")

    vault_key = {"x-goog-api-key": key["key"]}
    check(client.post("/v1beta/models/gemini-2.5-flash:generateContent", json={"contents": []}, headers=vault_key),
          "/v1beta/models/{model}:generateContent", "post")
    check(client.post("/v1/chat/completions", json={"model": "gemini-2.5-flash", "messages": []}),
          "/v1/chat/completions", "post")
    check(client.get("/api-keys/", headers=ann), "/api-keys/", "get")

    check(client.patch(f"/admin/api/users/{user['id']}", json={"balance_delta": 2, "reason": "welcome"},
                       headers=admin), "/admin/api/users/{user_id}", "patch")
    check(client.get(f"/admin/api/users/{user['id']}", headers=admin), "/admin/api/users/{user_id}", "get")
    check(client.get("/admin/api/users", headers=admin), "/admin/api/users", "get")
    usage = check(client.get("/admin/api/usage", headers=admin), "/admin/api/usage", "get")
    assert usage["items"], "the refused proxy call left a usage record"
    summary = check(client.get("/admin/api/usage/summary", headers=admin), "/admin/api/usage/summary", "get")
    assert summary["rows"]

    check(client.put("/admin/api/prices/gemini-2.5-flash", json={"input": "0.3", "output": 2.5}, headers=admin),
          "/admin/api/prices/{model}", "put")
    check(client.get("/admin/api/prices/gemini-2.5-flash", headers=admin), "/admin/api/prices/{model}", "get")
    check(client.get("/admin/api/prices", headers=admin), "/admin/api/prices", "get")
    check(client.put("/admin/api/prices/gemini-x", headers=admin,
                     json={"input": 1, "output": 2, "audio_input": 3, "grounding_fee": 35, "grounding_unit": "query"}),
          "/admin/api/prices/{model}", "put")
    seed_models(db.session)
    db.session.commit()
    models = check(client.get("/admin/api/models", headers=admin), "/admin/api/models", "get")
    assert models["models"]
    added = check(client.post("/admin/api/upstream-keys", json={"keys": ["AIzaTestKey-0123456789"]}, headers=admin),
                  "/admin/api/upstream-keys", "post")
    added = added["upstream_keys"]
    check(client.patch(f"/admin/api/upstream-keys/{added[0]['id']}", json={"state": "disabled"}, headers=admin),
          "/admin/api/upstream-keys/{key_id}", "patch")
    check(client.get("/admin/api/upstream-keys", headers=admin), "/admin/api/upstream-keys", "get")
    check(client.delete(f"/admin/api/upstream-keys/{added[0]['id']}", headers=admin),
          "/admin/api/upstream-keys/{key_id}", "delete")
    check(client.delete("/admin/api/prices/gemini-2.5-flash", headers=admin), "/admin/api/prices/{model}", "delete")
    check(client.get("/admin/api/prices/gemini-2.5-flash", headers=admin), "/admin/api/prices/{model}", "get")
    check(client.patch(f"/admin/api/api-keys/{key['id']}", json={"rate_limit_rpm": 60}, headers=admin),
          "/admin/api/api-keys/{key_id}", "patch")
    check(client.patch(f"/admin/api/users/{user['id']}", json={"limits": {"spend_cap": 5, "spend_cap_period": "day",
                                                                          "visible_models": ["gemini-*"]}},
                       headers=admin), "/admin/api/users/{user_id}", "patch")
    policy = {"spend_cap": "1.5", "spend_cap_period": "day", "allowed_models": ["gemini-2.5-*"],
              "expires_at": "2030-01-01T00:00:00Z", "allowed_ips": ["10.0.0.0/8"], "max_concurrency": 2}
    check(client.patch(f"/api-keys/{key['id']}", json=policy, headers=ann), "/api-keys/{key_id}", "patch")
    check(client.patch(f"/api-keys/{key['id']}", json={"spend_cap": 6}, headers=ann), "/api-keys/{key_id}", "patch")
    check(client.post("/api-keys/", json={"name": "capped", "spend_cap": 1, "spend_cap_period": "day"}, headers=ann),
          "/api-keys/", "post")
    check(client.get("/api-keys/", headers=ann), "/api-keys/", "get")
    check(client.get(f"/admin/api/users/{user['id']}", headers=admin), "/admin/api/users/{user_id}", "get")
    check(client.delete(f"/api-keys/{key['id']}", headers=ann), "/api-keys/{key_id}", "delete")
    check(client.delete(f"/api-keys/{key['id']}", headers=ann), "/api-keys/{key_id}", "delete")
    check(client.patch(f"/api-keys/{key['id']}", json={"max_concurrency": 1}, headers=ann), "/api-keys/{key_id}",
          "patch")
