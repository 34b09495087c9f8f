"""Routing on the proxy (Flask test client, fake upstream): aliases, virtual models, hidden models,
models.list in both shapes, fallback chains, and pricing by the model that serves the call."""

from decimal import Decimal

import pytest

from tests.billing.books import records
from tests.fake_gemini import faults
from vault.billing.prices import PriceInput, upsert_price
from vault.extensions import db

PROMPT = {"contents": [{"role": "user", "parts": [{"text": "Say hi"}]}]}
CHAT = {"messages": [{"role": "user", "content": "Say hi"}]}
NOTHINK = {"generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}}
SEARCH = {"tools": [{"google_search": {}}]}


def generate(client, caller, model: str, body: dict = PROMPT, status: int = 200):
    response = client.post(f"/v1beta/models/{model}:generateContent", json=body, headers=caller.native)
    response.close()
    assert response.status_code == status, response.get_data(as_text=True)
    return response


def chat(client, caller, model: str, status: int = 200, **fields):
    response = client.post("/v1/chat/completions", json=CHAT | {"model": model} | fields, headers=caller.openai)
    response.close()
    assert response.status_code == status, response.get_data(as_text=True)
    return response


@pytest.fixture
def priced(app):
    upsert_price(db.session, "gemini-2.5-flash", PriceInput(input=Decimal("0.30"), output=Decimal("2.50")))
    upsert_price(db.session, "gemini-2.5-pro", PriceInput(input=Decimal("1.25"), output=Decimal("10.00")))
    db.session.commit()


def test_an_alias_is_served_and_priced_as_its_target_in_both_dialects(client, caller, route, fake_gemini, priced):
    route.alias("fast", "gemini-2.5-flash")
    route.alias("gpt-4o", "gemini-2.5-pro")
    generate(client, caller, "fast")
    assert fake_gemini.last_request.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    chat(client, caller, "gpt-4o")
    assert fake_gemini.last_request.json["model"] == "gemini-2.5-pro"
    native, openai = records(caller.user_id)[-2:]
    assert (native.model, native.priced_model, native.price_input_nano) == (
        "gemini-2.5-flash", "gemini-2.5-flash", 300_000_000)
    assert (openai.model, openai.priced_model, openai.price_output_nano) == (
        "gemini-2.5-pro", "gemini-2.5-pro", 10_000_000_000)
    assert native.fallback_from is None


def test_virtual_model_defaults_reach_the_upstream_in_both_dialects(client, caller, route, fake_gemini):
    route.alias("gemini-2.5-flash-search", "gemini-2.5-flash", SEARCH)
    route.alias("gemini-2.5-pro-nothink", "gemini-2.5-pro", NOTHINK)
    generate(client, caller, "gemini-2.5-flash-search")
    assert fake_gemini.last_request.json["tools"] == [{"google_search": {}}]
    generate(client, caller, "gemini-2.5-pro-nothink")
    sent = fake_gemini.last_request.json
    assert sent["generationConfig"] == {"thinkingConfig": {"thinkingBudget": 0}} and "tools" not in sent
    chat(client, caller, "gemini-2.5-pro-nothink")
    sent = fake_gemini.last_request.json
    assert sent["model"] == "gemini-2.5-pro"
    assert sent["extra_body"] == {"google": {"thinking_config": {"thinking_budget": 0}}}
    chat(client, caller, "gemini-2.5-flash-search")  # no chat form of the search tool: native only
    assert "tools" not in fake_gemini.last_request.json and "extra_body" not in fake_gemini.last_request.json


def test_the_callers_explicit_values_win(client, caller, route, fake_gemini):
    route.alias("smart", "gemini-2.5-pro", NOTHINK | SEARCH)
    own = {"tools": [{"code_execution": {}}], "generationConfig": {"thinkingConfig": {"thinkingBudget": 1024}}}
    generate(client, caller, "smart", PROMPT | own)
    assert fake_gemini.last_request.json["tools"] == [{"code_execution": {}}]
    assert fake_gemini.last_request.json["generationConfig"] == {"thinkingConfig": {"thinkingBudget": 1024}}
    chat(client, caller, "smart", reasoning_effort="high")  # Google refuses both: the caller's choice stands
    assert fake_gemini.last_request.json["reasoning_effort"] == "high"
    assert "extra_body" not in fake_gemini.last_request.json
    chat(client, caller, "smart", extra_body={"google": {"thinking_config": {"thinking_budget": 64}}})
    assert fake_gemini.last_request.json["extra_body"] == {"google": {"thinking_config": {"thinking_budget": 64}}}


def test_models_list_shows_aliases_and_hides_hidden_models_in_both_shapes(client, caller, route, fake_gemini):
    route.alias("fast", "gemini-2.5-flash")
    route.model("gemini-2.0-flash", hidden=True)
    native = client.get("/v1beta/models", headers=caller.native).get_json()
    names = [model["name"] for model in native["models"]]
    assert "models/fast" in names and "models/gemini-2.0-flash" not in names and "models/gemini-2.5-flash" in names
    fast = next(model for model in native["models"] if model["name"] == "models/fast")
    assert fast["inputTokenLimit"] == 1048576 and fast["description"] == "Alias of gemini-2.5-flash"
    for path in ("/v1/models", "/v1beta/openai/models"):
        ids = [model["id"] for model in client.get(path, headers=caller.openai).get_json()["data"]]
        assert "models/fast" in ids and "models/gemini-2.0-flash" not in ids and "models/gemini-2.5-pro" in ids
    assert client.get("/v1/models/fast", headers=caller.native).get_json()["name"] == "models/fast"
    assert client.get("/v1/models/fast", headers=caller.openai).get_json()["id"] == "models/fast"
    assert fake_gemini.last_request.path == "/v1beta/openai/models/gemini-2.5-flash"


def test_aliases_join_the_last_page_only(client, caller, route):
    route.alias("fast", "gemini-2.5-flash")
    first = client.get("/v1beta/models?pageSize=2", headers=caller.native).get_json()
    assert first["nextPageToken"] and "models/fast" not in [model["name"] for model in first["models"]]
    token = first["nextPageToken"]
    while token:
        page = client.get(f"/v1beta/models?pageSize=2&pageToken={token}", headers=caller.native).get_json()
        token = page.get("nextPageToken")
    assert page["models"][-1]["name"] == "models/fast"


def test_a_hidden_model_is_refused_in_both_dialects_without_an_upstream_call(client, caller, route, fake_gemini):
    route.model("gemini-2.5-pro", hidden=True)
    route.alias("smart", "gemini-2.5-pro")  # an alias to a hidden model is how an admin exposes only it
    calls = len(fake_gemini.calls)
    native = generate(client, caller, "gemini-2.5-pro", status=404)
    assert native.get_json()["error"]["status"] == "NOT_FOUND"
    openai = chat(client, caller, "models/gemini-2.5-pro", status=404)
    assert "gemini-2.5-pro" in openai.get_json()["error"]["message"]
    assert client.get("/v1/models/gemini-2.5-pro", headers=caller.native).status_code == 404
    assert len(fake_gemini.calls) == calls
    assert [record.status for record in records(caller.user_id)][-2:] == [404, 404]
    generate(client, caller, "smart")
    assert fake_gemini.last_request.path == "/v1beta/models/gemini-2.5-pro:generateContent"


def test_a_routing_change_applies_to_the_next_call(client, caller, route, admin_headers):
    generate(client, caller, "gemini-2.5-pro")  # the worker's table is loaded, without the setting
    route.model("gemini-2.5-pro", hidden=True)
    generate(client, caller, "gemini-2.5-pro", status=404)
    route.model("gemini-2.5-pro")
    generate(client, caller, "gemini-2.5-pro")
    route.alias("fast", "gemini-2.5-flash")
    generate(client, caller, "fast")
    assert client.delete("/admin/api/model-aliases/fast", headers=admin_headers).status_code == 204
    generate(client, caller, "fast", status=404)  # the fake knows no such model


def test_fallback_serves_when_every_key_cools_for_the_model(client, caller, route, fake_gemini, priced):
    fake_gemini.enqueue(faults.quota_exceeded("30s", model="gemini-2.5-pro"), model="gemini-2.5-pro", times=None)
    generate(client, caller, "gemini-2.5-pro", status=429)  # off by default
    route.model("gemini-2.5-pro", fallback=["gemini-2.5-flash"])
    generate(client, caller, "gemini-2.5-pro")
    assert fake_gemini.last_request.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    record = records(caller.user_id)[-1]
    assert (record.model, record.priced_model, record.fallback_from) == (
        "gemini-2.5-flash", "gemini-2.5-flash", "gemini-2.5-pro")
    assert record.price_input_nano == 300_000_000  # priced for the model that answered
    chat(client, caller, "gemini-2.5-pro")
    assert fake_gemini.last_request.json["model"] == "gemini-2.5-flash"
    assert records(caller.user_id)[-1].fallback_from == "gemini-2.5-pro"


def test_fallback_is_only_for_cooling_keys(client, caller, route, fake_gemini):
    route.model("gemini-2.5-pro", fallback=["gemini-2.5-flash"])
    fake_gemini.enqueue(faults.invalid_argument("bad request"), model="gemini-2.5-pro")
    generate(client, caller, "gemini-2.5-pro", status=400)
    assert records(caller.user_id)[-1].fallback_from is None
