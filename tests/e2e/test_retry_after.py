"""`Retry-After` is the time until the soonest key can serve the model -- in every mode and dialect.

The case that once answered `Retry-After: 82309`: a key cooled until the daily quota reset
was deleted, and then every remaining key answered 429 with a short retry delay. The keys a
request has tried are cooling too, and they are back first.
"""

import time
import uuid
from datetime import datetime

import pytest
import requests

from tests.databases import TEST_REDIS_URL
from tests.fake_gemini import faults

MODEL = "gemini-2.5-flash"
PROMPT = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
MODES = {
    # two workers sharing Redis; a refresh interval so long that only Redis can tell them anything
    "redis": {"backend": "postgresql", "WEB_CONCURRENCY": "2", "VAULT_POOL_REFRESH_SECONDS": "600"},
    "local": {"backend": "sqlite", "WEB_CONCURRENCY": "1"},
    # without Redis a worker learns of another's changes when it re-reads the pool
    "workers without redis": {"backend": "postgresql", "WEB_CONCURRENCY": "2", "VAULT_POOL_REFRESH_SECONDS": "1"},
}


def native(stack) -> requests.Response:
    return requests.post(f"{stack.base_url}/v1beta/models/{MODEL}:generateContent", json=PROMPT, timeout=30,
                         headers={"x-goog-api-key": stack.vault_key})


def openai(stack) -> requests.Response:
    return requests.post(f"{stack.base_url}/v1/chat/completions", timeout=30,
                         json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
                         headers={"Authorization": f"Bearer {stack.vault_key}"})


def key_id(stack, secret: str) -> int:
    return next(key["id"] for key in stack.pool() if key["key"].endswith(secret[-4:]))


@pytest.fixture(params=list(MODES))
def stack_in_mode(request, own_stack):
    settings = dict(MODES[request.param])
    if request.param == "redis":
        if not TEST_REDIS_URL:
            pytest.skip("TEST_REDIS_URL is not set")
        settings |= {"REDIS_URL": TEST_REDIS_URL, "VAULT_REDIS_PREFIX": f"vault-test-{uuid.uuid4().hex[:8]}:"}
    return own_stack(key_count=3, **settings)


def test_a_deleted_keys_daily_quota_does_not_set_retry_after(stack_in_mode, start_server):
    stack = stack_in_mode
    first, second, daily = stack.upstream_keys
    stack.fake.enqueue(faults.quota_exceeded(None, window="day"), key=daily)
    while not stack.fake.requests_for(daily):
        assert native(stack).status_code == 200, "the request fails over to another key"
    [cooldown] = next(key for key in stack.pool() if key["key"].endswith(daily[-4:]))["cooldowns"]
    assert (datetime.fromisoformat(cooldown["until"]) - datetime.now().astimezone()).total_seconds() > 60
    # With Redis, another instance deletes it: this one's workers only hear of it through Redis.
    admin_base = stack.base_url
    if "REDIS_URL" in stack.environ:
        admin_base = start_server(stack.environ).base_url
    deleted = requests.delete(f"{admin_base}/admin/api/upstream-keys/{key_id(stack, daily)}",
                              headers=stack.admin(), timeout=10)
    assert deleted.status_code == 204
    time.sleep(float(stack.environ["VAULT_POOL_REFRESH_SECONDS"]) if "REDIS_URL" not in stack.environ else 0)
    calls_on_deleted = len(stack.fake.requests_for(daily))

    stack.fake.enqueue(faults.quota_exceeded("3s"), key=first, times=None)
    stack.fake.enqueue(faults.quota_exceeded("10s"), key=second, times=None)
    answers = [send(stack) for send in (native, openai, native, openai, native, native)]
    assert [answer.status_code for answer in answers] == [429] * len(answers)
    waits = [int(answer.headers["Retry-After"]) for answer in answers]
    assert all(1 <= wait <= 3 for wait in waits), waits
    assert len(stack.fake.requests_for(daily)) == calls_on_deleted, "a deleted key is never used again"


def test_retry_after_counts_keys_disabled_for_a_while(own_stack):
    """One key cooling for two minutes, the other disabled for 40s: the disabled one is back first."""
    stack = own_stack(key_count=2, WEB_CONCURRENCY="1", VAULT_KEY_MAX_FAILURES="1", VAULT_KEY_DISABLE_SECONDS="40")
    first, second = stack.upstream_keys
    stack.fake.enqueue(faults.location_not_supported(), key=first, times=None)
    stack.fake.enqueue(faults.quota_exceeded("120s"), key=second, times=None)
    assert native(stack).status_code == 502, "one key failed, the other is rate-limited"
    answers = [native(stack), openai(stack)]
    assert [answer.status_code for answer in answers] == [429, 429], "the usable key is cooling after a 429"
    assert all(35 <= int(answer.headers["Retry-After"]) <= 40 for answer in answers)


def test_retry_after_is_capped(own_stack):
    stack = own_stack(key_count=1, WEB_CONCURRENCY="1", VAULT_RETRY_AFTER_MAX_SECONDS="60")
    stack.fake.enqueue(faults.quota_exceeded(None, window="day"), times=None)
    answers = [native(stack), openai(stack)]
    assert [answer.status_code for answer in answers] == [429, 429]
    assert [answer.headers["Retry-After"] for answer in answers] == ["60", "60"]
