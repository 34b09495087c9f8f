"""The fake is faithful for google-genai 3.6.1: the SDK, pointed straight at it, works unchanged."""

import pytest
from google import genai
from google.genai import errors, types

from tests.fake_gemini import faults
from tests.fake_gemini.payloads import embedding_values
from tests.fake_gemini.script import Reply
from tests.fake_gemini.server import FakeGemini

MODEL = "gemini-2.5-flash"
KEY = "AIzaSyTEST-genai"


@pytest.fixture(params=[None, "v1beta"], ids=["default-v1", "v1beta"])
def api_version(request) -> str | None:
    """The SDK's default version (None, which is v1 in 3.x) and v1beta."""
    return request.param


@pytest.fixture
def client(api_version, fake_gemini: FakeGemini) -> genai.Client:
    """A google-genai client pointed straight at the fake."""
    options = types.HttpOptions(base_url=fake_gemini.base_url, api_version=api_version)
    return genai.Client(api_key=KEY, http_options=options)


def test_generate_content_counts_words_and_uses_header_key(client, fake_gemini, api_version):
    config = types.GenerateContentConfig(system_instruction="be brief", temperature=0.2)
    response = client.models.generate_content(model=MODEL, contents="Say hi", config=config)
    assert response.text == "Echo: Say hi"
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    usage = response.usage_metadata
    assert (usage.prompt_token_count, usage.candidates_token_count, usage.total_token_count) == (4, 3, 7)
    call = fake_gemini.last_request
    assert call.path == f"/{api_version or 'v1'}/models/{MODEL}:generateContent"
    assert (call.key, call.key_source, call.endpoint) == (KEY, "header", "generateContent")
    assert call.json["systemInstruction"]["parts"][0]["text"] == "be brief"


def test_generate_content_stream_arrives_in_chunks_with_final_usage(client, fake_gemini):
    fake_gemini.enqueue(Reply(text="one two three four", chunks=4))
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="count to four"))
    assert [c.text for c in chunks] == ["one ", "two ", "three ", "four"]
    assert [c.usage_metadata.candidates_token_count for c in chunks] == [1, 2, 3, 4]
    last = chunks[-1]
    assert last.candidates[0].finish_reason == types.FinishReason.STOP
    assert all(c.candidates[0].finish_reason is None for c in chunks[:-1])
    assert (last.usage_metadata.prompt_token_count, last.usage_metadata.total_token_count) == (3, 7)
    call = fake_gemini.last_request
    assert call.done.wait(5)
    assert call.query == {"alt": ["sse"]} and call.chunks_sent == 4 and call.outcome == "ok"


def test_usage_follows_gemini_semantics_for_thoughts_and_cache(client, fake_gemini):
    fake_gemini.enqueue(Reply(text="fine thanks", thoughts_tokens=20, cached_tokens=5,
                              tool_use_prompt_tokens=2))
    usage = client.models.generate_content(model=MODEL, contents="how are you").usage_metadata
    assert usage.prompt_token_count == 3 + 5
    assert usage.cached_content_token_count == 5
    assert usage.candidates_token_count == 2
    assert usage.thoughts_token_count == 20
    assert usage.total_token_count == 8 + 2 + 20 + 2


def test_count_tokens(client):
    assert client.models.count_tokens(model=MODEL, contents="one two three").total_tokens == 3


def test_embed_content_single_and_many(client, fake_gemini):
    model = "gemini-embedding-001"
    single = client.models.embed_content(model=model, contents="hello")
    assert single.embeddings[0].values == embedding_values("hello", fake_gemini.embedding_dim)
    many = client.models.embed_content(model=model, contents=["hello", "world"],
                                       config=types.EmbedContentConfig(output_dimensionality=3))
    assert [e.values for e in many.embeddings] == [embedding_values(t, 3) for t in ("hello", "world")]
    assert {c.endpoint for c in fake_gemini.calls} == {"batchEmbedContents"}


def test_models_list_pages_through_everything(client, fake_gemini):
    names = [m.name for m in client.models.list(config={"page_size": 1})]
    assert names == [f"models/{n}" for n in fake_gemini.catalog]
    calls = fake_gemini.calls
    assert len(calls) == len(fake_gemini.catalog)
    assert "pageToken" not in calls[0].query
    assert all(c.query["pageSize"] == ["1"] and "pageToken" in c.query for c in calls[1:])


@pytest.mark.parametrize("name", [MODEL, f"models/{MODEL}"])
def test_models_get_with_and_without_prefix(client, fake_gemini, api_version, name):
    model = client.models.get(model=name)
    assert (model.name, model.display_name) == (f"models/{MODEL}", "Gemini 2.5 Flash")
    assert fake_gemini.last_request.path == f"/{api_version or 'v1'}/models/{MODEL}"


ERROR_CASES = [
    (faults.quota_exceeded("37s"), errors.ClientError, 429, "RESOURCE_EXHAUSTED"),
    (faults.resource_exhausted(), errors.ClientError, 429, "RESOURCE_EXHAUSTED"),
    (faults.key_invalid(), errors.ClientError, 400, "INVALID_ARGUMENT"),
    (faults.key_leaked(), errors.ClientError, 403, "PERMISSION_DENIED"),
    (faults.key_service_blocked(), errors.ClientError, 403, "PERMISSION_DENIED"),
    (faults.location_not_supported(), errors.ClientError, 400, "FAILED_PRECONDITION"),
    (faults.internal(), errors.ServerError, 500, "INTERNAL"),
    (faults.unavailable(), errors.ServerError, 503, "UNAVAILABLE"),
    (faults.deadline_exceeded(), errors.ServerError, 504, "DEADLINE_EXCEEDED"),
    (faults.bad_gateway_html(), errors.ServerError, 502, "Bad Gateway"),
]


@pytest.mark.parametrize(("fault", "exc", "code", "status"), ERROR_CASES,
                         ids=[f"{c[2]}-{c[3]}" for c in ERROR_CASES])
def test_scripted_errors_raise_the_sdk_exception(client, fake_gemini, fault, exc, code, status):
    fake_gemini.enqueue(fault, key=KEY)
    with pytest.raises(exc) as caught:
        client.models.generate_content(model=MODEL, contents="x")
    assert (caught.value.code, caught.value.status) == (code, status)
    assert client.models.generate_content(model=MODEL, contents="x").text == "Echo: x"


def test_quota_fault_carries_quota_id_and_retry_delay(client, fake_gemini):
    fake_gemini.enqueue(faults.quota_exceeded("1.5s", window="day"))
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=MODEL, contents="x")
    details = {d["@type"].rsplit(".", 1)[1]: d for d in caught.value.details["error"]["details"]}
    assert details["RetryInfo"]["retryDelay"] == "1.5s"
    assert details["QuotaFailure"]["violations"][0]["quotaId"].startswith("GenerateRequestsPerDay")


def test_stream_refused_before_start_raises(client, fake_gemini):
    fake_gemini.enqueue(faults.quota_exceeded(), endpoint="streamGenerateContent")
    with pytest.raises(errors.ClientError) as caught:
        list(client.models.generate_content_stream(model=MODEL, contents="x"))
    assert caught.value.code == 429


def test_mid_stream_error_event_raises_after_first_chunk(client, fake_gemini):
    fake_gemini.enqueue(Reply(text="a b c", error_after=1))
    seen = []
    with pytest.raises(errors.ServerError) as caught:
        for chunk in client.models.generate_content_stream(model=MODEL, contents="x"):
            seen.append(chunk.text)
    assert seen == ["a "]
    assert (caught.value.code, caught.value.status) == (503, "UNAVAILABLE")
    call = fake_gemini.last_request
    assert call.done.wait(5) and call.outcome == "error-event"


def test_unknown_model_is_not_found(client):
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="gemini-foo", contents="x")
    assert (caught.value.code, caught.value.status) == (404, "NOT_FOUND")
    with pytest.raises(errors.ClientError) as caught:
        client.models.get(model="gemini-foo")
    assert caught.value.code == 404


def test_unknown_key_is_invalid_and_registered_keys_work_in_strict_mode():
    with FakeGemini(keys=["AIza-registered"], accept_any_aiza=False) as fake:
        options = types.HttpOptions(base_url=fake.base_url)
        good = genai.Client(api_key="AIza-registered", http_options=options)
        assert good.models.generate_content(model=MODEL, contents="hi").text == "Echo: hi"
        bad = genai.Client(api_key="AIza-unknown", http_options=options)
        with pytest.raises(errors.ClientError) as caught:
            bad.models.generate_content(model=MODEL, contents="hi")
        assert caught.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"
        fake.remove_key("AIza-registered")
        with pytest.raises(errors.ClientError):
            good.models.generate_content(model=MODEL, contents="hi")


def test_script_is_per_key_and_per_model(fake_gemini):
    options = types.HttpOptions(base_url=fake_gemini.base_url)
    first, second = fake_gemini.new_key(), fake_gemini.new_key()
    fake_gemini.enqueue(faults.unavailable(), key=first, model="gemini-2.5-pro", times=2)
    a = genai.Client(api_key=first, http_options=options)
    b = genai.Client(api_key=second, http_options=options)
    assert b.models.generate_content(model="gemini-2.5-pro", contents="x").text == "Echo: x"
    assert a.models.generate_content(model=MODEL, contents="x").text == "Echo: x"
    for _ in range(2):
        with pytest.raises(errors.ServerError):
            a.models.generate_content(model="gemini-2.5-pro", contents="x")
    assert a.models.generate_content(model="gemini-2.5-pro", contents="x").text == "Echo: x"
    assert [c.status for c in fake_gemini.requests_for(first)] == [200, 503, 503, 200]


def test_finite_entries_take_precedence_over_persistent_ones(fake_gemini):
    client = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=fake_gemini.base_url))
    fake_gemini.enqueue(Reply(text="always"), key=KEY, times=None)
    fake_gemini.enqueue(faults.internal(), key=KEY)
    with pytest.raises(errors.ServerError):
        client.models.generate_content(model=MODEL, contents="x")
    assert [client.models.generate_content(model=MODEL, contents="x").text for _ in range(2)] == [
        "always", "always"]
    fake_gemini.clear_script()
    assert client.models.generate_content(model=MODEL, contents="x").text == "Echo: x"


def test_gzip_bodies_are_understood_by_the_sdk():
    with FakeGemini(gzip=True) as fake:
        client = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=fake.base_url))
        assert client.models.generate_content(model=MODEL, contents="zip me").text == "Echo: zip me"
        chunks = list(client.models.generate_content_stream(model=MODEL, contents="zip me"))
        assert "".join(c.text for c in chunks) == "Echo: zip me"
