"""Metering against a real server: every request recorded, every nano-USD accounted for.

The fake upstream's own log (what it served, and the usage it reported) is the reference;
the admin usage API, the per-key view and the balances must agree with it exactly.
"""

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.fake_gemini import Reply, faults
from vault.billing.prices import Rates, cost_nano
from vault.billing.usage import from_native, from_openai

# The prices the migration seeds (nano-USD per 1M tokens).
SEEDED = {
    "gemini-2.5-flash": Rates(300_000_000, 2_500_000_000, 30_000_000),
    "gemini-2.5-pro": Rates(1_250_000_000, 10_000_000_000, 125_000_000),
}


def sign_up(stack, email: str, key_count: int) -> dict:
    """A user with `key_count` Vault keys."""
    base, account = stack.base_url, {"email": email, "password": "long enough"}
    assert requests.post(f"{base}/auth/users/", json=account, timeout=30).status_code == 201
    token = requests.post(f"{base}/auth/token", json=account, timeout=30).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    keys = [requests.post(f"{base}/api-keys/", json={"name": f"k{n}"}, headers=headers, timeout=30).json()["key"]
            for n in range(key_count)]
    return {"email": email, "headers": headers, "keys": keys}


def call(stack, kind: str, vault_key: str, marker: str) -> requests.Response:
    """One request of `kind`, its prompt tagged with `marker` so the fake's log tells whose it was."""
    base, text = stack.base_url, f"{marker} please answer"
    native = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
    chat = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": text}]}
    google, bearer = {"x-goog-api-key": vault_key}, {"Authorization": f"Bearer {vault_key}"}
    if kind == "generate":
        return requests.post(f"{base}/v1beta/models/gemini-2.5-flash:generateContent", json=native, headers=google,
                             timeout=60)
    if kind == "pro-stream":
        return requests.post(f"{base}/v1/models/gemini-2.5-pro:streamGenerateContent?alt=sse", json=native,
                             headers=google, timeout=60)
    if kind == "array-stream":
        return requests.post(f"{base}/v1beta/models/gemini-2.5-flash:streamGenerateContent", json=native,
                             headers=google, timeout=60)
    if kind == "count":
        return requests.post(f"{base}/v1beta/models/gemini-2.5-flash:countTokens", json=native, headers=google,
                             timeout=60)
    if kind == "chat":
        return requests.post(f"{base}/v1/chat/completions", json=chat, headers=bearer, timeout=60)
    if kind == "chat-stream-usage":
        body = chat | {"stream": True, "stream_options": {"include_usage": True}}
        return requests.post(f"{base}/v1/chat/completions", json=body, headers=bearer, timeout=60)
    body = chat | {"stream": True}
    return requests.post(f"{base}/v1/chat/completions", json=body, headers=bearer, timeout=60)


KINDS = ["generate", "pro-stream", "array-stream", "count", "chat", "chat-stream-usage", "chat-stream"]


def marker_of(upstream_call) -> str:
    """The `uN-rM` tag a request carried, read from the fake's log of its body."""
    body = upstream_call.json or {}
    texts = [part.get("text", "") for content in body.get("contents", []) for part in content.get("parts", [])]
    texts += [message.get("content", "") for message in body.get("messages", [])]
    return next(word for text in texts for word in text.split() if word.startswith("u") and "-r" in word)


def expected_usage(upstream_call):
    reported = upstream_call.usage or {}
    return from_openai(reported) if upstream_call.dialect == "openai" else from_native(reported)


def wait_for_records(stack, count: int) -> list[dict]:
    """All usage records once `count` are settled (settlement follows the last byte)."""
    for _ in range(200):
        first = requests.get(f"{stack.base_url}/admin/api/usage?per_page=500", headers=stack.admin(), timeout=30).json()
        if first["total"] >= count:
            break
    pages = [first] + [
        requests.get(f"{stack.base_url}/admin/api/usage?per_page=500&page={page}", headers=stack.admin(),
                     timeout=30).json()
        for page in range(2, (first["total"] + 499) // 500 + 1)
    ]
    return [item for page in pages for item in page["items"]]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_burst_is_metered_exactly(own_stack, backend):
    stack = own_stack(key_count=3, backend=backend, WEB_CONCURRENCY="2")
    stack.fake.enqueue(Reply(thoughts_tokens=7, cached_tokens=2, chunk_texts=["deep ", "thought ", "here"]),
                       model="gemini-2.5-pro", times=None)
    users = [sign_up(stack, f"user{n}@example.com", key_count=2) for n in range(4)]
    plan = [(f"u{n % 4}-r{n}", KINDS[n % len(KINDS)], users[n % 4]["keys"][n % 2]) for n in range(245)]

    with ThreadPoolExecutor(max_workers=64) as pool:
        responses = list(pool.map(lambda job: call(stack, job[1], job[2], job[0]), plan))
    assert [response.status_code for response in responses] == [200] * len(plan)
    for (_, kind, _), response in zip(plan, responses, strict=True):
        if kind == "chat-stream":
            assert b'"usage"' not in response.content, "usage the client did not ask for is stripped"

    records = wait_for_records(stack, len(plan))
    assert len(records) == len(plan)
    served = [c for c in stack.fake.calls if c.status == 200]
    assert len(served) == len(plan)
    assert sum(r["total_tokens"] for r in records) == sum(expected_usage(c).total for c in served)
    assert sum(r["output_tokens"] for r in records) == sum(expected_usage(c).output for c in served)

    expected_cost: dict[str, int] = defaultdict(int)
    for upstream_call in served:
        usage = expected_usage(upstream_call)
        model = upstream_call.model if upstream_call.endpoint != "countTokens" else None
        cost = cost_nano(usage, SEEDED[model]) if model else 0
        expected_cost[marker_of(upstream_call).split("-")[0]] += cost
    assert sum(r["cost_nano_usd"] for r in records) == sum(expected_cost.values()) > 0

    admin_users = {u["email"]: u for u in requests.get(f"{stack.base_url}/admin/api/users", headers=stack.admin(),
                                                       timeout=30).json()}
    for n, user in enumerate(users):
        row = admin_users[user["email"]]
        assert row["balance_nano_usd"] == 100 * 10**9 - expected_cost[f"u{n}"], user["email"]
        assert row["spend_nano_usd"] == expected_cost[f"u{n}"]
        assert row["request_count"] == sum(1 for marker, _, _ in plan if marker.startswith(f"u{n}-"))
        keys = requests.get(f"{stack.base_url}/api-keys/", headers=user["headers"], timeout=30).json()
        mine = [r for r in records if r["user_id"] == row["id"]]
        assert sum(k["spend_nano_usd"] for k in keys) == expected_cost[f"u{n}"]
        assert sum(k["request_count"] for k in keys) == len(mine)
        assert sum(k["total_tokens"] for k in keys) == sum(r["total_tokens"] for r in mine)
        assert all(r["hold"] >= 0 for r in mine)
        detail = requests.get(f"{stack.base_url}/admin/api/users/{row['id']}", headers=stack.admin(), timeout=30).json()
        assert detail["ledger_balance_nano_usd"] == row["balance_nano_usd"], "the ledger recomputes the balance"
    pro = [r for r in records if r["model"] == "gemini-2.5-pro"]
    assert pro and all(r["thoughts_tokens"] == 7 and r["cached_tokens"] == 2 for r in pro)
    assert {r["endpoint"] for r in records} >= {"generateContent", "streamGenerateContent", "countTokens",
                                                "chat.completions"}


def test_client_disconnect_still_leaves_a_record(own_stack):
    stack = own_stack(key_count=1)
    gate = stack.fake.gated(Reply(chunk_texts=[f"w{n} " for n in range(20)]))
    response = requests.post(f"{stack.base_url}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
                             json={"contents": [{"parts": [{"text": "go"}]}]}, stream=True, timeout=30,
                             headers={"x-goog-api-key": stack.vault_key})
    next(line for line in response.iter_lines() if line)
    assert gate.wait_blocked()
    response.close()
    for _ in range(10):
        gate.release(1)
        if stack.fake.wait_disconnect(timeout=2):
            break
    (record,) = wait_for_records(stack, 1)
    assert record["ending"] == "client_disconnected" and record["status"] == 200
    assert 1 <= record["candidates_tokens"] <= gate.sent < 20
    assert record["cost_nano_usd"] == cost_nano(from_native({"promptTokenCount": record["prompt_tokens"],
                                                             "candidatesTokenCount": record["candidates_tokens"]}),
                                                SEEDED["gemini-2.5-flash"])


def test_spent_balance_is_402_in_each_dialect_and_recorded(own_stack):
    stack = own_stack(key_count=1)
    me = requests.get(f"{stack.base_url}/auth/users/me", headers={"Authorization": f"Bearer {stack.user_token}"},
                      timeout=10).json()
    set_zero = requests.patch(f"{stack.base_url}/admin/api/users/{me['id']}", json={"balance": 0, "reason": "test"},
                              headers=stack.admin(), timeout=10)
    assert set_zero.status_code == 200
    native = call(stack, "generate", stack.vault_key, "u0-r0")
    openai = call(stack, "chat", stack.vault_key, "u0-r1")
    assert native.status_code == openai.status_code == 402
    assert native.json()["error"]["code"] == 402
    assert openai.json()["error"]["type"] == "insufficient_quota"
    assert stack.fake.calls == []
    records = wait_for_records(stack, 2)
    assert {(r["status"], r["ending"], r["cost_nano_usd"]) for r in records} == {(402, "refused", 0)}


def test_a_nearly_spent_balance_is_held_down_to_the_overdraft_and_ends_within_it(own_stack):
    stack = own_stack(key_count=1)
    me = requests.get(f"{stack.base_url}/auth/users/me", headers={"Authorization": f"Bearer {stack.user_token}"},
                      timeout=10).json()
    requests.patch(f"{stack.base_url}/admin/api/users/{me['id']}", json={"balance": "0.000000100", "reason": "t"},
                   headers=stack.admin(), timeout=10)
    response = call(stack, "generate", stack.vault_key, "u0-r0")
    assert response.status_code == 200
    # 100 nano-USD plus the $0.01 overdraft covers about 4,000 output tokens of Flash, not its 65,536.
    cap = int(response.headers["X-Vault-Output-Cap"])
    assert 1024 <= cap < 65_536
    assert stack.fake.calls[-1].json["generationConfig"]["maxOutputTokens"] == cap
    (record,) = wait_for_records(stack, 1)
    assert record["hold"] == 0.0100001
    after = requests.get(f"{stack.base_url}/auth/users/me", headers={"Authorization": f"Bearer {stack.user_token}"},
                         timeout=10).json()
    assert after["balance_nano_usd"] == 100 - record["cost_nano_usd"]
    assert call(stack, "generate", stack.vault_key, "u0-r1").status_code == 402


def test_failures_and_refusals_are_recorded_and_release_the_hold(own_stack):
    stack = own_stack(key_count=1, VAULT_MAX_BODY_BYTES="4096")
    stack.fake.enqueue(faults.internal(), times=None)
    assert call(stack, "generate", stack.vault_key, "u0-r0").status_code == 502
    too_big = requests.post(f"{stack.base_url}/v1beta/models/gemini-2.5-flash:generateContent", data=b"x" * 5000,
                            headers={"x-goog-api-key": stack.vault_key}, timeout=10)
    assert too_big.status_code == 413
    records = sorted(wait_for_records(stack, 2), key=lambda r: r["status"])
    assert [(r["status"], r["ending"], r["cost_nano_usd"]) for r in records] == [(413, "refused", 0),
                                                                                 (502, "failed", 0)]
    me = requests.get(f"{stack.base_url}/auth/users/me", headers={"Authorization": f"Bearer {stack.user_token}"},
                      timeout=10).json()
    assert me["balance_nano_usd"] == 100 * 10**9
