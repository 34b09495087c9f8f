"""The fake honours output caps and answer counts (`maxOutputTokens` / `max_tokens`, `candidateCount` / `n`)
in what it generates and in the usage it reports, as the SDKs see it; and can leave usage out."""

import openai
import pytest
from google import genai
from google.genai import types

from tests.fake_gemini.script import Reply

MODEL = "gemini-2.5-flash"
LONG = " ".join(f"w{n}" for n in range(50))


@pytest.fixture
def models(fake_gemini):
    """google-genai's models API on the fake (the client is kept alive for the whole test)."""
    client = genai.Client(api_key="AIzaSyTEST-caps", http_options=types.HttpOptions(base_url=fake_gemini.base_url))
    yield client.models
    client.close()


def test_native_candidates_each_count_and_stop_at_the_cap(fake_gemini, models):
    fake_gemini.enqueue(Reply(text=LONG))
    config = types.GenerateContentConfig(max_output_tokens=4, candidate_count=3)
    response = models.generate_content(model=MODEL, contents="go", config=config)
    assert [c.content.parts[0].text for c in response.candidates] == ["w0 w1 w2 w3"] * 3
    assert [c.index for c in response.candidates] == [0, 1, 2]
    assert {c.finish_reason for c in response.candidates} == {types.FinishReason.MAX_TOKENS}
    assert response.usage_metadata.candidates_token_count == 12
    assert fake_gemini.last_request.usage["candidatesTokenCount"] == 12


def test_native_stream_reports_cumulative_usage_of_every_candidate(fake_gemini, models):
    fake_gemini.enqueue(Reply(text=LONG, chunks=5))
    config = types.GenerateContentConfig(max_output_tokens=10, candidate_count=2)
    chunks = list(models.generate_content_stream(model=MODEL, contents="go", config=config))
    assert all(len(chunk.candidates) == 2 for chunk in chunks)
    assert "".join(chunk.candidates[1].content.parts[0].text for chunk in chunks) == " ".join(LONG.split()[:10])
    counts = [chunk.usage_metadata.candidates_token_count for chunk in chunks]
    assert counts == sorted(counts) and counts[-1] == 20


def test_an_uncapped_answer_is_generated_whole(fake_gemini, models):
    fake_gemini.enqueue(Reply(text=LONG))
    response = models.generate_content(model=MODEL, contents="go")
    assert response.text == LONG and response.usage_metadata.candidates_token_count == 50


def test_openai_n_choices_each_count_and_stop_at_max_tokens(fake_gemini):
    client = openai.OpenAI(api_key="AIzaSyTEST-caps", base_url=fake_gemini.openai_base_url, max_retries=0)
    messages = [{"role": "user", "content": "go"}]
    fake_gemini.enqueue(Reply(text=LONG))
    completion = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=3, n=2)
    assert [(c.index, c.message.content, c.finish_reason) for c in completion.choices] == [
        (0, "w0 w1 w2", "length"), (1, "w0 w1 w2", "length")]
    assert completion.usage.completion_tokens == 6
    fake_gemini.enqueue(Reply(text=LONG, chunks=2))
    chunks = list(client.chat.completions.create(model=MODEL, messages=messages, max_completion_tokens=5, n=3,
                                                 stream=True, stream_options={"include_usage": True}))
    assert all(len(chunk.choices) == 3 for chunk in chunks)
    assert "".join(chunk.choices[2].delta.content for chunk in chunks) == "w0 w1 w2 w3 w4"
    assert chunks[-1].usage.completion_tokens == 15


def test_usage_can_be_left_out(fake_gemini, models):
    fake_gemini.enqueue(Reply(text="quiet", report_usage=False), times=2)
    assert models.generate_content(model=MODEL, contents="go").usage_metadata is None
    chunks = list(models.generate_content_stream(model=MODEL, contents="go"))
    assert "".join(chunk.text for chunk in chunks) == "quiet" and all(c.usage_metadata is None for c in chunks)
    assert fake_gemini.last_request.usage is None
