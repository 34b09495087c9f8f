"""Failover and key health against a real server: cooldowns, the breaker, disabling, give-up statuses."""

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest
import requests

from tests.fake_gemini import Fault, Reply, faults

MODEL = "gemini-2.5-flash"
GENERATE = f"/v1beta/models/{MODEL}:generateContent"
STREAM = f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
PROMPT = {"contents": [{"role": "user", "parts": [{"text": "Say hi"}]}]}
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
# What Google answers a request naming another project's file (`fileData.fileUri`).
FOREIGN_FILE = Fault(403, {"code": 403, "status": "PERMISSION_DENIED",
                           "message": "You do not have permission to access the File abc123 or it may not exist."})
MOVED = Fault(302, raw=b"<html><body>Moved</body></html>", content_type="text/html; charset=UTF-8")


def generate(stack, path=GENERATE):
    return requests.post(stack.base_url + path, json=PROMPT, headers={"x-goog-api-key": stack.vault_key}, timeout=30)


def health_of(stack, upstream_key):
    masked = f"{upstream_key[:4]}…{upstream_key[-4:]}"
    return next(key for key in stack.pool() if key["key"] == masked)


def test_burst_survives_a_rate_limited_and_a_broken_key(own_stack):
    stack = own_stack(WEB_CONCURRENCY="2")
    limited, broken, healthy = stack.upstream_keys
    stack.fake.enqueue(faults.quota_exceeded("2s"), key=limited, times=None)
    stack.fake.enqueue(faults.internal(), key=broken, times=None)

    def call(n):
        return generate(stack, STREAM if n % 2 else GENERATE)

    with ThreadPoolExecutor(max_workers=100) as pool:
        responses = list(pool.map(call, range(200)))
    assert [r.status_code for r in responses] == [200] * 200
    assert all(b"Echo" in r.content and b"\"error\"" not in r.content for r in responses)

    cooling = health_of(stack, limited)
    assert [c["model"] for c in cooling["cooldowns"]] == [MODEL]
    assert cooling["state"] == "active"
    set_aside = health_of(stack, broken)
    assert set_aside["state"] == "active" and set_aside["consecutive_failures"] == 0
    assert set_aside["last_error"].startswith("500")
    assert "*" in [c["model"] for c in set_aside["cooldowns"]], "its breaker set the broken key aside"
    assert health_of(stack, healthy)["request_count"] >= 200 - 2 * len(stack.fake.requests_for(limited))

    stack.fake.clear_script()
    until = datetime.fromisoformat(cooling["cooldowns"][0]["until"])
    time.sleep(max(0.0, until.timestamp() - time.time()) + 0.3)  # a cooldown ends with time itself
    before = len(stack.fake.requests_for(limited))
    assert all(generate(stack).status_code == 200 for _ in range(6))
    assert len(stack.fake.requests_for(limited)) > before, "the cooled key serves again"


def test_every_key_cooling_gives_429_with_retry_after(own_stack):
    stack = own_stack(key_count=2, WEB_CONCURRENCY="1")
    stack.fake.enqueue(faults.quota_exceeded("30s"), times=None)
    response = generate(stack)
    assert response.status_code == 429
    assert 25 <= int(response.headers["Retry-After"]) <= 30
    error = response.json()["error"]
    assert error["status"] == "RESOURCE_EXHAUSTED"
    assert len(stack.fake.calls) == 2

    again = generate(stack)
    assert again.status_code == 429 and int(again.headers["Retry-After"]) <= 30
    assert any(detail["@type"].endswith("RetryInfo") for detail in again.json()["error"]["details"])
    assert len(stack.fake.calls) == 2, "cooling keys are not called"
    other_model = generate(stack, "/v1beta/models/gemini-2.5-pro:generateContent")
    assert len(stack.fake.calls) == 4 and other_model.status_code == 429  # cooldowns are per model


def test_openai_dialect_for_a_cooling_pool(own_stack):
    stack = own_stack(key_count=1, WEB_CONCURRENCY="1")
    stack.fake.enqueue(faults.quota_exceeded("20s"), times=None)
    response = requests.post(f"{stack.base_url}/v1/chat/completions", timeout=10,
                             json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
                             headers={"Authorization": f"Bearer {stack.vault_key}"})
    assert response.status_code == 429 and response.headers["Retry-After"]
    assert response.json()["error"]["type"] == "rate_limit_error"


def test_no_keys_is_503(own_stack):
    stack = own_stack(key_count=0, WEB_CONCURRENCY="1")
    response = generate(stack)
    assert response.status_code == 503
    assert response.json()["error"]["status"] == "UNAVAILABLE"


def test_all_keys_failing_is_502_and_nobody_is_blamed(own_stack):
    stack = own_stack(key_count=2, WEB_CONCURRENCY="1")
    stack.fake.enqueue(faults.internal(), times=None)
    response = generate(stack)
    assert response.status_code == 502 and response.json()["error"]["code"] == 502
    assert len(stack.fake.calls) == 2
    assert all(key["state"] == "active" and key["consecutive_failures"] == 0 and not key["cooldowns"]
               for key in stack.pool())


def test_retries_are_bounded(own_stack):
    stack = own_stack(key_count=5, WEB_CONCURRENCY="1", VAULT_UPSTREAM_MAX_RETRIES="2")
    stack.fake.enqueue(faults.unavailable(), times=None)
    assert generate(stack).status_code == 502
    assert len(stack.fake.calls) == 3


def test_a_hanging_upstream_is_504(own_stack):
    stack = own_stack(key_count=1, WEB_CONCURRENCY="1", VAULT_UPSTREAM_READ_TIMEOUT="1")
    stack.fake.hang()
    response = generate(stack)
    assert response.status_code == 504
    assert response.json()["error"]["status"] == "DEADLINE_EXCEEDED"
    stack.fake.release_all()


def test_invalid_key_is_disabled_until_an_admin_enables_it(own_stack):
    stack = own_stack(key_count=2, WEB_CONCURRENCY="1")
    bad, good = stack.upstream_keys
    stack.fake.remove_key(bad)
    assert all(generate(stack).status_code == 200 for _ in range(4))
    assert len(stack.fake.requests_for(bad)) == 1
    health = health_of(stack, bad)
    assert health["state"] == "disabled" and "API_KEY_INVALID" in health["disabled_reason"]
    assert health["disabled_until"] is None

    stack.fake.add_key(bad)
    enabled = requests.patch(f"{stack.base_url}/admin/api/upstream-keys/{health['id']}", json={"state": "active"},
                             headers=stack.admin(), timeout=10)
    assert enabled.json()["state"] == "active"
    assert all(generate(stack).status_code == 200 for _ in range(4))
    assert len(stack.fake.requests_for(bad)) >= 2


def test_a_key_that_keeps_failing_is_set_aside_by_its_breaker(own_stack):
    stack = own_stack(key_count=2, WEB_CONCURRENCY="1")
    failing, healthy = stack.upstream_keys
    stack.fake.enqueue(faults.internal(), key=failing, times=None)
    assert all(generate(stack).status_code == 200 for _ in range(8))
    assert len(stack.fake.requests_for(failing)) == 3, "three 500s in a row, then it rests"
    health = health_of(stack, failing)
    assert health["state"] == "active"
    [rest] = health["cooldowns"]
    assert rest["model"] == "*" and rest["reason"].startswith("circuit breaker: 3 upstream failures")
    assert not health_of(stack, healthy)["cooldowns"]


@pytest.mark.parametrize("dialect", ["native", "openai"])
def test_a_403_about_a_file_the_request_names_is_the_callers(own_stack, dialect):
    stack = own_stack(key_count=2, WEB_CONCURRENCY="1")
    stack.fake.enqueue(FOREIGN_FILE, times=None)
    for _ in range(5):
        if dialect == "native":
            response = generate(stack)
        else:
            response = requests.post(f"{stack.base_url}/v1/chat/completions", json=CHAT, timeout=30,
                                     headers={"Authorization": f"Bearer {stack.vault_key}"})
        assert response.status_code == 403
    assert len(stack.fake.calls) == 5, "returned once each, no failover"
    for key in stack.pool():
        assert key["state"] == "active" and not key["cooldowns"]
        assert (key["failure_count"], key["consecutive_failures"], key["last_error"]) == (0, 0, None)


def test_one_request_disables_at_most_one_key(own_stack):
    stack = own_stack(key_count=3, WEB_CONCURRENCY="1")
    stack.fake.enqueue(faults.key_service_blocked(), times=None)
    response = generate(stack)
    assert response.status_code == 502 and response.json()["error"]["code"] == 502
    assert len(stack.fake.calls) == 2, "a second rejection ends the request"
    assert [key["state"] for key in stack.pool()].count("disabled") == 1
    second = health_of(stack, stack.fake.calls[1].key)
    assert (second["state"], second["last_error"]) == ("active", None)


def test_an_upstream_redirect_is_a_502_and_no_key_changes(own_stack):
    stack = own_stack(key_count=2, WEB_CONCURRENCY="1")
    stack.fake.enqueue(MOVED, times=None)
    before = stack.pool()
    response = generate(stack)
    assert response.status_code == 502 and "Location" not in response.headers
    assert len(stack.fake.calls) == 1, "no failover"
    assert stack.pool() == before


def test_repeated_key_failures_disable_for_a_while(own_stack):
    stack = own_stack(key_count=2, WEB_CONCURRENCY="1", VAULT_KEY_MAX_FAILURES="2")
    failing, _ = stack.upstream_keys
    stack.fake.enqueue(faults.location_not_supported(), key=failing, times=None)
    for _ in range(6):
        assert generate(stack).status_code == 200
    health = health_of(stack, failing)
    assert health["state"] == "disabled" and health["disabled_until"]
    assert health["consecutive_failures"] == 2
    assert len(stack.fake.requests_for(failing)) == 2


def test_daily_quota_cools_until_the_pacific_midnight(own_stack):
    stack = own_stack(key_count=2, WEB_CONCURRENCY="1")
    daily, _ = stack.upstream_keys
    stack.fake.enqueue(faults.quota_exceeded("10s", window="day"), key=daily)
    assert generate(stack).status_code == 200
    until = datetime.fromisoformat(health_of(stack, daily)["cooldowns"][0]["until"])
    from zoneinfo import ZoneInfo

    local = until.astimezone(ZoneInfo("America/Los_Angeles"))
    assert (local.hour, local.minute, local.second) == (0, 0, 0)


def test_a_broken_stream_is_never_restarted(own_stack):
    stack = own_stack(key_count=2, WEB_CONCURRENCY="1")
    stack.fake.enqueue(Reply(text="one two three four", die_after=1))
    response = generate(stack, STREAM)
    assert b'"error"' in response.content
    assert len(stack.fake.calls) == 1
