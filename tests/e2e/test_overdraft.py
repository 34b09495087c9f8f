"""The overdraft bound against a real server (gunicorn + gevent, two workers), on SQLite and PostgreSQL.

A user's balance never ends below −VAULT_OVERDRAFT_LIMIT ($0.01): holds cover the worst case a
request allows, or the output cap is lowered to what the balance covers (`X-Vault-Output-Cap`),
and a stream whose cost passes its hold is cut with an in-band error in its dialect.
"""

from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
import requests
from google import genai
from google.genai import errors, types

from tests.fake_gemini import Reply

BOUND = 10_000_000  # the default VAULT_OVERDRAFT_LIMIT, $0.01, in nano-USD
EXPENSIVE = {"input": "2.00", "output": "40.00"}  # 65,536 uncapped output tokens would hold $2.62
KINDS = ("generate", "stream", "chat", "chat-stream")


def price_pro_high(stack) -> None:
    response = requests.put(f"{stack.base_url}/admin/api/prices/gemini-2.5-pro", json=EXPENSIVE,
                            headers=stack.admin(), timeout=30)
    assert response.status_code == 200, response.text


def uncapped(stack, kind: str, marker: str) -> requests.Response:
    """An uncapped request of `kind` to the expensive model."""
    base, text = stack.base_url, f"{marker} write at length"
    native = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
    chat = {"model": "gemini-2.5-pro", "messages": [{"role": "user", "content": text}], "stream": kind == "chat-stream"}
    if kind.startswith("chat"):
        return requests.post(f"{base}/v1/chat/completions", json=chat, timeout=60,
                             headers={"Authorization": f"Bearer {stack.vault_key}"})
    method = "streamGenerateContent?alt=sse" if kind == "stream" else "generateContent"
    return requests.post(f"{base}/v1beta/models/gemini-2.5-pro:{method}", json=native, timeout=60,
                         headers={"x-goog-api-key": stack.vault_key})


def all_records(stack, count: int) -> list[dict]:
    for _ in range(200):
        found = requests.get(f"{stack.base_url}/admin/api/usage?per_page=500", headers=stack.admin(),
                             timeout=30).json()
        if found["total"] >= count:
            return found["items"]
    raise AssertionError(f"only {found['total']} of {count} records")


def the_user(stack) -> dict:
    me = requests.get(f"{stack.base_url}/auth/users/me", headers={"Authorization": f"Bearer {stack.user_token}"},
                      timeout=10).json()
    return requests.get(f"{stack.base_url}/admin/api/users/{me['id']}", headers=stack.admin(), timeout=10).json()


def sent_cap(upstream_call) -> int | None:
    body = upstream_call.json or {}
    return (body.get("generationConfig") or {}).get("maxOutputTokens") or body.get("max_tokens")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_uncapped_expensive_requests_end_within_the_bound(own_stack, backend):
    stack = own_stack(key_count=3, backend=backend, WEB_CONCURRENCY="2", VAULT_DEFAULT_BALANCE="0.20")
    price_pro_high(stack)
    stack.fake.enqueue(Reply(text=" ".join(f"w{n}" for n in range(400))), model="gemini-2.5-pro", times=None)
    plan = [(f"r{n}", KINDS[n % len(KINDS)]) for n in range(20)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(lambda job: uncapped(stack, job[1], job[0]), plan))

    statuses = [response.status_code for response in responses]
    assert set(statuses) <= {200, 402} and 200 in statuses, statuses
    served = [call for call in stack.fake.calls if call.status == 200]
    assert len(served) == statuses.count(200)
    caps = sorted(int(r.headers["X-Vault-Output-Cap"]) for r in responses if r.status_code == 200)
    assert len(caps) == statuses.count(200) and all(1024 <= cap < 65_536 for cap in caps)
    assert sorted(sent_cap(call) for call in served) == caps, "the upstream got the cap the caller was told"

    records = all_records(stack, len(plan))
    assert len(records) == len(plan) and len({r["settlement_id"] for r in records}) == len(plan)
    for record in records:
        assert record["status"] in (200, 402)
        assert record["cost_nano_usd"] <= round(record["hold"] * 10**9), record
    user = the_user(stack)
    ledger = user["ledger"]
    assert ledger["consistent"] and ledger["open_holds"] == 0
    assert user["balance_nano_usd"] == ledger["adjustments_nano_usd"] - ledger["settled_cost_nano_usd"]
    assert ledger["settled_cost_nano_usd"] == sum(r["cost_nano_usd"] for r in records)
    assert user["balance_nano_usd"] >= -BOUND, user["balance_nano_usd"]


@pytest.fixture
def cut_stack(own_stack):
    """$0.05 of balance against an upstream that ignores the cap it is sent (3,000 words in 30 chunks)."""
    stack = own_stack(key_count=1, VAULT_DEFAULT_BALANCE="0.05")
    price_pro_high(stack)
    stack.fake.enqueue(Reply(chunk_texts=["w " * 100] * 30), model="gemini-2.5-pro")
    return stack


def test_a_native_stream_past_its_hold_is_cut_with_a_402_event(cut_stack):
    client = genai.Client(api_key=cut_stack.vault_key, http_options=types.HttpOptions(base_url=cut_stack.base_url))
    received = []
    with pytest.raises(errors.ClientError) as raised:
        for chunk in client.models.generate_content_stream(model="gemini-2.5-pro", contents="write at length"):
            received.append(chunk.text)
    assert raised.value.code == 402
    assert 10 <= len(received) < 30
    (record,) = all_records(cut_stack, 1)
    assert (record["ending"], record["usage_source"], record["status"]) == ("cut_off", "reported", 200)
    assert record["candidates_tokens"] == 100 * len(received)  # what the client was sent, as Google counted it
    assert record["cost_nano_usd"] <= round(record["hold"] * 10**9)
    assert the_user(cut_stack)["balance_nano_usd"] >= -BOUND


def test_an_openai_stream_past_its_hold_is_cut_at_its_usage_chunk(cut_stack):
    client = openai.OpenAI(api_key=cut_stack.vault_key, base_url=f"{cut_stack.base_url}/v1", max_retries=0)
    received = []
    with pytest.raises(openai.APIError):
        for chunk in client.chat.completions.create(model="gemini-2.5-pro", stream=True,
                                                    messages=[{"role": "user", "content": "write at length"}]):
            received.append(chunk.choices[0].delta.content)
    # Usage comes with the last chunk only: the piece that carries it passes the hold (a piece
    # read from the upstream may hold a chunk or two before it).
    assert 25 <= len(received) <= 29
    (record,) = all_records(cut_stack, 1)
    assert (record["ending"], record["usage_source"]) == ("cut_off", "estimated")
    cap = sent_cap(cut_stack.fake.calls[0])
    assert record["candidates_tokens"] == min(len(received) * 200 // 4, cap)  # 4 characters a token, at most the cap
    assert record["cost_nano_usd"] <= round(record["hold"] * 10**9)
    assert the_user(cut_stack)["balance_nano_usd"] >= -BOUND
