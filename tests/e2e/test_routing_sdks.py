"""Model routing through gunicorn with the official SDKs, unchanged: aliases and virtual models in
both dialects, models.list in both shapes, hidden models refused, a fallback when keys cool."""

import time

import openai
import pytest
import requests
from google import genai
from google.genai import errors, types

from tests.fake_gemini import faults


def usage_records(stack, count: int) -> list[dict]:
    """The newest `count` usage records, oldest first, once settled."""
    for _ in range(200):
        items = requests.get(f"{stack.base_url}/admin/api/usage?per_page=50", headers=stack.admin(),
                             timeout=10).json()["items"]
        if len(items) >= count:
            return items[:count][::-1]
        time.sleep(0.05)
    raise AssertionError("usage records not settled")


@pytest.fixture
def routed(own_stack):
    stack = own_stack(key_count=1, VAULT_SETTLE_DELAY_MS="0")

    def put(path: str, body: dict) -> None:
        response = requests.put(f"{stack.base_url}/admin/api/{path}", json=body, headers=stack.admin(), timeout=10)
        assert response.status_code == 200, response.text

    put("prices/gemini-2.5-flash", {"input": "0.30", "output": "2.50"})
    put("model-aliases/fast", {"target": "gemini-2.5-flash"})
    put("model-aliases/gpt-4o-mini", {"target": "gemini-2.5-flash",
                                      "defaults": {"generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}}})
    put("model-aliases/gemini-2.5-flash-search", {"target": "gemini-2.5-flash",
                                                  "defaults": {"tools": [{"google_search": {}}]}})
    put("models/gemini-2.0-flash", {"hidden": True})
    stack.put = put
    return stack


def clients(stack):
    chat = openai.OpenAI(api_key=stack.vault_key, base_url=f"{stack.base_url}/v1", max_retries=0)
    native = genai.Client(api_key=stack.vault_key, http_options=types.HttpOptions(base_url=stack.base_url))
    return chat, native


def test_aliases_and_virtual_models_with_both_sdks(routed):
    chat, native = clients(routed)
    completion = chat.chat.completions.create(model="fast", messages=[{"role": "user", "content": "Say hi"}])
    assert completion.choices[0].message.content == "Echo: Say hi"
    assert routed.fake.last_request.json["model"] == "gemini-2.5-flash"
    assert native.models.generate_content(model="fast", contents="Say hi").text == "Echo: Say hi"
    assert routed.fake.last_request.path == "/v1/models/gemini-2.5-flash:generateContent"
    for record in usage_records(routed, 2):
        assert (record["model"], record["priced_model"], record["price"]["input"]) == (
            "gemini-2.5-flash", "gemini-2.5-flash", 0.3)

    chat.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert routed.fake.last_request.json["extra_body"] == {"google": {"thinking_config": {"thinking_budget": 0}}}
    chat.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                                 reasoning_effort="low")  # the caller's choice; Google refuses both
    assert "extra_body" not in routed.fake.last_request.json
    native.models.generate_content(model="gemini-2.5-flash-search", contents="news?")
    assert routed.fake.last_request.json["tools"] == [{"google_search": {}}]
    native.models.generate_content(
        model="gemini-2.5-flash-search", contents="news?",
        config=types.GenerateContentConfig(tools=[types.Tool(code_execution=types.ToolCodeExecution())]))
    assert routed.fake.last_request.json["tools"] == [{"codeExecution": {}}]


def test_models_list_in_both_shapes_and_hidden_models_refused(routed):
    chat, native = clients(routed)
    openai_ids = [model.id for model in chat.models.list()]
    assert {"models/fast", "models/gpt-4o-mini", "models/gemini-2.5-flash"} <= set(openai_ids)
    assert "models/gemini-2.0-flash" not in openai_ids
    native_names = [model.name for model in native.models.list()]
    assert {"models/fast", "models/gemini-2.5-flash-search"} <= set(native_names)
    assert "models/gemini-2.0-flash" not in native_names
    assert native.models.get(model="fast").name == "models/fast"

    calls = len(routed.fake.calls)
    with pytest.raises(openai.NotFoundError):
        chat.chat.completions.create(model="gemini-2.0-flash", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(errors.ClientError) as refused:
        native.models.generate_content(model="gemini-2.0-flash", contents="hi")
    assert refused.value.code == 404
    assert len(routed.fake.calls) == calls


def test_fallback_when_every_key_cools_for_the_model(routed):
    chat, native = clients(routed)
    routed.fake.enqueue(faults.quota_exceeded("30s", model="gemini-2.5-pro"), model="gemini-2.5-pro", times=None)
    with pytest.raises(errors.ClientError) as limited:
        native.models.generate_content(model="gemini-2.5-pro", contents="hi")
    assert limited.value.code == 429  # no fallback until an admin sets one
    routed.put("models/gemini-2.5-pro", {"fallback": ["gemini-2.5-flash"]})
    assert native.models.generate_content(model="gemini-2.5-pro", contents="hi").text == "Echo: hi"
    record = usage_records(routed, 1)[0]
    assert (record["model"], record["fallback_from"]) == ("gemini-2.5-flash", "gemini-2.5-pro")
