"""The fake is faithful for openai 3.57.0 on Gemini's OpenAI-compatible endpoint."""

import openai
import pytest

from tests.fake_gemini import faults
from tests.fake_gemini.payloads import embedding_values
from tests.fake_gemini.script import Reply
from tests.fake_gemini.server import FakeGemini

MODEL = "gemini-2.5-flash"
KEY = "AIzaSyTEST-openai"
MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "Say hi"}]


@pytest.fixture
def client(fake_gemini: FakeGemini) -> openai.OpenAI:
    """An openai client on the fake's /v1beta/openai/ base, without SDK retries."""
    return openai.OpenAI(api_key=KEY, base_url=fake_gemini.openai_base_url, max_retries=0)


def test_chat_completion(client, fake_gemini):
    completion = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=50)
    assert completion.choices[0].message.content == "Echo: Say hi"
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (4, 3, 7)
    call = fake_gemini.last_request
    assert (call.path, call.key, call.key_source) == ("/v1beta/openai/chat/completions", KEY, "bearer")
    assert (call.endpoint, call.model) == ("openai.chat", MODEL)
    assert call.headers["x-stainless-lang"] == "python"


def test_max_tokens_truncates_with_length_finish(client, fake_gemini):
    fake_gemini.enqueue(Reply(text="one two three four"))
    completion = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=2)
    assert completion.choices[0].message.content == "one two"
    assert completion.choices[0].finish_reason == "length"


def test_total_tokens_include_thoughts(client, fake_gemini):
    fake_gemini.enqueue(Reply(text="ok", thoughts_tokens=10))
    usage = client.chat.completions.create(model=MODEL, messages=MESSAGES).usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (4, 1, 15)


def test_stream_with_include_usage_puts_usage_on_last_content_chunk(client, fake_gemini):
    fake_gemini.enqueue(Reply(text="a b c", chunks=3))
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content for c in chunks) == "a b c"
    assert [c.choices[0].finish_reason for c in chunks] == [None, None, "stop"]
    assert [c.usage is not None for c in chunks] == [False, False, True]
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (4, 3)


def test_stream_without_include_usage_has_no_usage(client, fake_gemini):
    chunks = list(client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True))
    assert "".join(c.choices[0].delta.content for c in chunks) == "Echo: Say hi"
    assert all(c.usage is None for c in chunks)
    assert fake_gemini.last_request.streamed


def test_mid_stream_error_event_raises_api_error(client, fake_gemini):
    fake_gemini.enqueue(Reply(text="a b c", error_after=1))
    seen = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True):
            seen.append(chunk.choices[0].delta.content)
    assert seen == ["a "]
    assert caught.value.body["status"] == "UNAVAILABLE"


def test_models_list_and_retrieve(client, fake_gemini):
    ids = [m.id for m in client.models.list()]
    assert ids == [f"models/{name}" for name in fake_gemini.catalog]
    model = client.models.retrieve(MODEL)
    assert (model.id, model.owned_by) == (f"models/{MODEL}", "google")
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gemini-foo")


def test_embeddings_default_base64_and_float(client, fake_gemini):
    expected = embedding_values("hello world", fake_gemini.embedding_dim)
    encoded = client.embeddings.create(model="gemini-embedding-001", input=["hello world"])
    assert fake_gemini.last_request.json["encoding_format"] == "base64"
    assert encoded.data[0].embedding == expected
    assert (encoded.usage.prompt_tokens, encoded.usage.total_tokens) == (2, 2)
    plain = client.embeddings.create(model="gemini-embedding-001", input="hello world",
                                     encoding_format="float", dimensions=3)
    assert plain.data[0].embedding == embedding_values("hello world", 3)


def test_scripted_429_raises_rate_limit_error_with_list_body(client, fake_gemini):
    fake_gemini.enqueue(faults.quota_exceeded("37s"), key=KEY, endpoint="openai.chat")
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert caught.value.status_code == 429
    assert isinstance(caught.value.body, list)
    assert caught.value.body[0]["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert len(fake_gemini.calls) == 1


@pytest.mark.parametrize(("fault", "exc"), [
    (faults.key_invalid(), openai.BadRequestError),
    (faults.key_leaked(), openai.PermissionDeniedError),
    (faults.unavailable(), openai.InternalServerError),
])
def test_scripted_errors_map_to_openai_exceptions(client, fake_gemini, fault, exc):
    fake_gemini.enqueue(fault)
    with pytest.raises(exc):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)


def test_unknown_key_is_rejected():
    with FakeGemini(accept_any_aiza=False) as fake:
        client = openai.OpenAI(api_key="AIza-unknown", base_url=fake.openai_base_url, max_retries=0)
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model=MODEL, messages=MESSAGES)
        assert caught.value.body[0]["error"]["details"][0]["reason"] == "API_KEY_INVALID"


def test_extra_body_google_takes_the_documented_chat_fields(client, fake_gemini):
    """Google's form: `extra_body={"extra_body": {"google": {...}}}` sends a top-level `extra_body` object."""
    thinking = {"extra_body": {"google": {"thinking_config": {"thinking_budget": 0, "include_thoughts": False}}}}
    client.chat.completions.create(model=MODEL, messages=MESSAGES, extra_body=thinking)
    assert fake_gemini.last_request.json["extra_body"] == thinking["extra_body"]
    with pytest.raises(openai.BadRequestError):  # an unknown field of `google`
        client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                       extra_body={"extra_body": {"google": {"tools": [{"google_search": {}}]}}})
    with pytest.raises(openai.BadRequestError):  # reasoning_effort and a thinking config overlap
        client.chat.completions.create(model=MODEL, messages=MESSAGES, reasoning_effort="low", extra_body=thinking)
