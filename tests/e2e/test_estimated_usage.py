"""Every billable call is charged from the best evidence, against a real server.

The upstream's own usage when it reported it; otherwise the documented estimate (input from the
request, output from the text the client was sent), recorded with `usage_source = "estimated"`.
"""

import json

import pytest
import requests

from tests.fake_gemini import Reply
from vault.billing.prices import Rates, cost_nano
from vault.billing.usage import Usage

FLASH = Rates(300_000_000, 2_500_000_000, 30_000_000)
EMBEDDING = Rates(150_000_000, 0, 150_000_000)
FORTY = [f"w{n:02d} " for n in range(40)]  # four characters each: one estimated token a chunk


def records_of(stack, count: int) -> list[dict]:
    """The usage records, oldest first, once `count` are settled."""
    for _ in range(200):
        found = requests.get(f"{stack.base_url}/admin/api/usage?per_page=500", headers=stack.admin(),
                             timeout=30).json()
        if found["total"] >= count:
            return sorted(found["items"], key=lambda record: record["id"])
    raise AssertionError(f"only {found['total']} of {count} records")


def post(stack, path: str, body: dict, stream: bool = False) -> requests.Response:
    auth = ({"Authorization": f"Bearer {stack.vault_key}"} if path.startswith("/v1/") and "models/" not in path
            else {"x-goog-api-key": stack.vault_key})
    return requests.post(f"{stack.base_url}{path}", json=body, headers=auth, stream=stream, timeout=30)


def test_answers_without_usage_pay_their_estimate_and_free_actions_stay_free(own_stack):
    stack = own_stack(key_count=1)
    text = {"parts": [{"text": "x" * 40}]}
    assert post(stack, "/v1beta/models/gemini-embedding-001:embedContent", {"content": text}).status_code == 200
    batch = {"requests": [{"model": "models/gemini-embedding-001", "content": text}] * 3}
    assert post(stack, "/v1beta/models/gemini-embedding-001:batchEmbedContents", batch).status_code == 200
    stack.fake.enqueue(Reply(text="twelve chars", report_usage=False))
    native = {"contents": [{"role": "user", "parts": [{"text": "y" * 20}]}]}
    answered = post(stack, "/v1beta/models/gemini-2.5-flash:generateContent", native)
    assert answered.status_code == 200 and "usageMetadata" not in answered.json()
    assert post(stack, "/v1beta/models/gemini-2.5-flash:countTokens", native).status_code == 200
    assert requests.get(f"{stack.base_url}/v1beta/models", headers={"x-goog-api-key": stack.vault_key},
                        timeout=30).status_code == 200
    chat = {"model": "gemini-embedding-001", "input": ["abc"]}
    assert post(stack, "/v1/embeddings", chat).status_code == 200

    embed, batched, generated, counted, listed, openai_embed = records_of(stack, 6)
    assert (embed["usage_source"], embed["prompt_tokens"], embed["output_tokens"]) == ("estimated", 10, 0)
    assert embed["cost_nano_usd"] == cost_nano(Usage(prompt=10), EMBEDDING) > 0
    assert (batched["usage_source"], batched["prompt_tokens"]) == ("estimated", 30)
    assert (generated["usage_source"], generated["prompt_tokens"], generated["candidates_tokens"]) == (
        "estimated", 5, 3)  # "y" * 20 in, "twelve chars" out
    assert generated["cost_nano_usd"] == cost_nano(Usage(prompt=5, candidates=3), FLASH)
    for free in (counted, listed):
        assert (free["cost_nano_usd"], free["usage_source"]) == (0, "reported")
    assert (openai_embed["usage_source"], openai_embed["prompt_tokens"]) == ("reported", 1)


def read_events(response: requests.Response, count: int) -> list[str]:
    """The first `count` data events of a stream, by line (SSE), or elements' text (a JSON array)."""
    events = []
    for line in response.iter_lines():
        if line.startswith(b"data: {") or b'"text"' in line:
            events.append(line.decode())
        if len(events) == count:
            return events
    raise AssertionError(f"the stream ended after {len(events)} events")


@pytest.mark.parametrize(("dialect", "source"), [("openai", "estimated"), ("native-array", "reported")])
def test_a_stream_the_client_leaves_pays_for_what_it_was_sent(own_stack, dialect, source):
    stack = own_stack(key_count=1)
    gate = stack.fake.gated(Reply(chunk_texts=FORTY))
    if dialect == "openai":
        body = {"model": "gemini-2.5-flash", "stream": True, "messages": [{"role": "user", "content": "count on"}]}
        response = post(stack, "/v1/chat/completions", body, stream=True)
    else:
        body = {"contents": [{"role": "user", "parts": [{"text": "count on"}]}]}
        response = post(stack, "/v1beta/models/gemini-2.5-flash:streamGenerateContent", body, stream=True)
    gate.release(34)
    assert gate.wait_sent(35)
    read_events(response, 35)
    response.close()
    for _ in range(10):
        gate.release(1)
        if stack.fake.wait_disconnect(timeout=2):
            break
    (record,) = records_of(stack, 1)
    assert (record["ending"], record["status"], record["usage_source"]) == ("client_disconnected", 200, source)
    assert 35 <= record["candidates_tokens"] <= gate.sent < 40
    assert record["prompt_tokens"] == 2  # "count on": 8 characters, or two words
    assert record["cost_nano_usd"] == cost_nano(Usage(prompt=2, candidates=record["candidates_tokens"]), FLASH)


@pytest.mark.parametrize(("dialect", "source"), [("openai", "estimated"), ("native-sse", "reported")])
def test_an_upstream_break_pays_for_what_was_delivered(own_stack, dialect, source):
    stack = own_stack(key_count=1)
    stack.fake.enqueue(Reply(chunk_texts=FORTY[:10], die_after=6))
    if dialect == "openai":
        body = {"model": "gemini-2.5-flash", "stream": True, "messages": [{"role": "user", "content": "count on"}]}
        response = post(stack, "/v1/chat/completions", body)
    else:
        body = {"contents": [{"role": "user", "parts": [{"text": "count on"}]}]}
        response = post(stack, "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", body)
    events = [line for line in response.text.splitlines() if line.startswith("data: {")]
    assert len(events) == 7 and json.loads(events[-1][6:])["error"]
    (record,) = records_of(stack, 1)
    assert (record["ending"], record["usage_source"]) == ("upstream_broke", source)
    assert (record["prompt_tokens"], record["candidates_tokens"]) == (2, 6)
    assert record["cost_nano_usd"] == cost_nano(Usage(prompt=2, candidates=6), FLASH) > 0
