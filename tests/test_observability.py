"""Request ids, /readyz, /metrics and the login throttle's shared storage."""

import json
import logging
import uuid

import pytest
import requests

from tests.databases import TEST_REDIS_URL
from vault.observability import JsonFormatter, RequestIdFilter
from vault.ratelimit import Limiter, LoginThrottle


def test_every_response_carries_a_request_id(client):
    generated = client.get("/healthz").headers["X-Request-Id"]
    assert len(generated) == 32
    assert client.get("/healthz", headers={"X-Request-Id": "abc-123-def"}).headers["X-Request-Id"] == "abc-123-def"
    assert client.get("/healthz", headers={"X-Request-Id": "bad id!"}).headers["X-Request-Id"] != "bad id!"


def test_log_lines_are_json_with_the_request_id(app, client):
    record = logging.LogRecord("vault.test", logging.INFO, __file__, 1, "hello %s", ("there",), None)
    with app.test_request_context(headers={"X-Request-Id": "req-12345678"}):
        app.preprocess_request()
        RequestIdFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "hello there" and line["request_id"] == "req-12345678"


def test_readyz_needs_a_usable_upstream_key(client, runner):
    not_ready = client.get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.get_json() == {"status": "unavailable", "database": "up", "redis": "skipped",
                                    "upstream_keys": "down", "models": {"*": "unavailable"},
                                    "keys": {"active": 0, "cooling": 0, "disabled": 0}}
    runner.invoke(args=["upstream", "add", "AIzaSyA-first-upstream-key-0000000000001"])
    assert client.get("/readyz").get_json()["status"] == "ready"


def test_metrics_count_requests_and_key_states(client, runner, make_user, make_api_key):
    runner.invoke(args=["upstream", "add", "AIzaSyA-first-upstream-key-0000000000001"])
    key = make_api_key(make_user(balance="0")).plaintext
    refused = client.post("/v1beta/models/gemini-2.5-flash:generateContent", json={},
                          headers={"x-goog-api-key": key})
    assert refused.status_code == 402
    text = client.get("/metrics").get_data(as_text=True)
    # Unknown to the (empty) price table, the model is labelled by what priced it: the fallback.
    assert 'vault_requests_total{endpoint="generateContent",model="fallback",status="402"} 1.0' in text
    assert 'vault_upstream_keys{state="active"} 1' in text


@pytest.mark.skipif(not TEST_REDIS_URL, reason="TEST_REDIS_URL is not set")
def test_login_throttle_is_shared_through_redis():
    prefix = f"vault-test-{uuid.uuid4().hex[:8]}:limits:"
    first = LoginThrottle(Limiter(TEST_REDIS_URL, prefix), max_failures=2, window_seconds=60)
    second = LoginThrottle(Limiter(TEST_REDIS_URL, prefix), max_failures=2, window_seconds=60)
    # Two workers see one count: failures from one address on either make it wait on both,
    # while the account stays open from another address.
    first.failed("ada@example.com", "10.0.0.1")
    second.failed("ada@example.com", "10.0.0.1")
    assert first.retry_after("ada@example.com", "10.0.0.1") is not None
    assert second.retry_after("ada@example.com", "10.0.0.1") is not None
    assert first.retry_after("ada@example.com", "10.0.0.3") is None
    second.succeeded("ada@example.com", "10.0.0.1")
    assert first.retry_after("ada@example.com", "10.0.0.1") is None


def test_metrics_add_up_across_workers(own_stack, tmp_path):
    stack = own_stack(key_count=1, WEB_CONCURRENCY="2", PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"))
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    for _ in range(12):
        assert requests.post(f"{stack.base_url}/v1beta/models/gemini-2.5-flash:generateContent", json=body,
                             headers={"x-goog-api-key": stack.vault_key}, timeout=10).ok
    text = requests.get(f"{stack.base_url}/metrics", timeout=10).text
    served = [line for line in text.splitlines()
              if line.startswith('vault_requests_total{endpoint="generateContent"') and 'status="200"' in line]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in served) == 12


@pytest.mark.parametrize("offered", [None, "Bearer wrong-token", "Basic c2NyYXBlcg==", "Bearer "])
def test_metrics_token_is_required_when_set(app, client, offered):
    app.config["VAULT_METRICS_TOKEN"] = "scrape-secret-123"
    headers = {"Authorization": offered} if offered else {}
    refused = client.get("/metrics", headers=headers)
    assert refused.status_code == 401 and refused.get_json()["error"]["code"] == "unauthenticated"
    allowed = client.get("/metrics", headers={"Authorization": "Bearer scrape-secret-123"})
    assert allowed.status_code == 200 and "vault_requests_total" in allowed.get_data(as_text=True)
