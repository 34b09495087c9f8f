"""The official SDKs, unchanged, talking to Gemini through the Vault."""

import openai
import pytest
from google import genai
from google.genai import types

from tests.fake_gemini import Reply


@pytest.fixture
def openai_client(stack):
    return openai.OpenAI(api_key=stack.vault_key, base_url=f"{stack.base_url}/v1", max_retries=0)


@pytest.fixture(params=["v1", "v1beta"])
def genai_client(request, stack):
    return genai.Client(api_key=stack.vault_key,
                        http_options=types.HttpOptions(base_url=stack.base_url, api_version=request.param))


def served_by_pool(stack) -> bool:
    """Every upstream call carried a pooled key, never the Vault key."""
    return all(call.key in stack.upstream_keys for call in stack.fake.calls) and stack.fake.calls


def test_openai_chat(openai_client, stack):
    completion = openai_client.chat.completions.create(
        model="gemini-2.5-flash", messages=[{"role": "user", "content": "Say hi"}])
    assert completion.choices[0].message.content == "Echo: Say hi"
    assert completion.usage.prompt_tokens == 2
    assert served_by_pool(stack)


@pytest.mark.parametrize("include_usage", [True, False])
def test_openai_chat_stream(openai_client, stack, include_usage):
    stack.fake.enqueue(Reply(chunk_texts=["one ", "two ", "three"]))
    options = {"stream_options": {"include_usage": True}} if include_usage else {}
    chunks = list(openai_client.chat.completions.create(
        model="gemini-2.5-flash", messages=[{"role": "user", "content": "count"}], stream=True, **options))
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == "one two three"
    assert (chunks[-1].usage is not None) is include_usage


def test_openai_models_and_embeddings(openai_client, stack):
    ids = [model.id for model in openai_client.models.list()]
    assert "models/gemini-2.5-flash" in ids
    assert openai_client.models.retrieve("gemini-2.5-flash").id == "models/gemini-2.5-flash"
    embedding = openai_client.embeddings.create(model="gemini-embedding-001", input=["hello", "world"])
    assert len(embedding.data) == 2 and len(embedding.data[0].embedding) == 8


def test_genai_generate(genai_client, stack):
    response = genai_client.models.generate_content(model="gemini-2.5-flash", contents="Say hi")
    assert response.text == "Echo: Say hi"
    assert response.usage_metadata.prompt_token_count == 2
    assert served_by_pool(stack)


def test_genai_stream(genai_client, stack):
    stack.fake.enqueue(Reply(chunk_texts=["one ", "two ", "three"]))
    chunks = list(genai_client.models.generate_content_stream(model="gemini-2.5-flash", contents="count"))
    assert "".join(chunk.text for chunk in chunks) == "one two three"
    assert chunks[-1].usage_metadata.candidates_token_count == 3


def test_genai_count_tokens_embed_and_models(genai_client, stack):
    assert genai_client.models.count_tokens(model="gemini-2.5-flash", contents="three little words").total_tokens == 3
    embedded = genai_client.models.embed_content(model="gemini-embedding-001", contents=["hello", "world"])
    assert len(embedded.embeddings) == 2
    names = [model.name for model in genai_client.models.list(config={"page_size": 2})]
    assert "models/gemini-2.5-flash" in names and len(names) >= 5
    assert genai_client.models.get(model="gemini-2.5-pro").name == "models/gemini-2.5-pro"
