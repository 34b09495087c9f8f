"""Money against a real server while a stream is in flight: an admin deletes its key or sets the
balance, a client reuses its X-Request-Id; every request is billed once and `billing check` is clean."""

import threading
import uuid

import pytest
import requests

from tests.e2e.server import flask_cli
from tests.e2e.stacks import ProxyStack
from tests.e2e.test_metering import wait_for_records
from tests.fake_gemini import Reply

STREAM = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
GENERATE = "/v1beta/models/gemini-2.5-flash:generateContent"
PROMPT = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


class StreamInFlight:
    """A stream read on a thread of its own, held by the fake after its first chunk."""

    def __init__(self, stack: ProxyStack, headers: dict | None = None):
        self.gate = stack.fake.gated(Reply(chunk_texts=["one ", "two ", "three"]))
        self.body = b""
        self._thread = threading.Thread(target=self._read, args=(stack, headers or {}))
        self._thread.start()
        assert self.gate.wait_blocked(timeout=10), "the stream reached the fake and was held"

    def _read(self, stack: ProxyStack, headers: dict) -> None:
        with requests.post(stack.base_url + STREAM, json=PROMPT, stream=True, timeout=30,
                           headers={"x-goog-api-key": stack.vault_key} | headers) as response:
            self.body = b"".join(response.iter_content(chunk_size=None))

    def finish(self) -> bytes:
        self.gate.open()
        self._thread.join(timeout=30)
        return self.body


def me(stack: ProxyStack) -> dict:
    return requests.get(f"{stack.base_url}/auth/users/me", timeout=10,
                        headers={"Authorization": f"Bearer {stack.user_token}"}).json()


def assert_billing_check_is_clean(stack: ProxyStack) -> None:
    checked = flask_cli(stack.environ, "billing", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "0 mismatch(es); 0 open hold(s)" in checked.stdout


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_key_deleted_mid_stream_still_serves_and_bills_it(own_stack, backend):
    stack = own_stack(key_count=1, backend=backend)
    (pooled,) = stack.pool()
    stream = StreamInFlight(stack)
    deleted = requests.delete(f"{stack.base_url}/admin/api/upstream-keys/{pooled['id']}", headers=stack.admin(),
                              timeout=10)
    assert deleted.status_code == 204 and stack.pool() == []
    body = stream.finish()
    assert b"three" in body and b'"error"' not in body
    (record,) = wait_for_records(stack, 1)
    assert (record["upstream_key_id"], record["status"], record["ending"]) == (pooled["id"], 200, "completed")
    assert record["cost_nano_usd"] > 0
    assert requests.post(stack.base_url + GENERATE, json=PROMPT, headers={"x-goog-api-key": stack.vault_key},
                         timeout=10).status_code == 503, "the deleted key is out of the pool"
    assert_billing_check_is_clean(stack)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_setting_the_balance_to_zero_mid_stream_leaves_minus_its_cost(own_stack, backend):
    stack = own_stack(key_count=1, backend=backend)
    user_id = me(stack)["id"]
    stream = StreamInFlight(stack)
    assert requests.patch(f"{stack.base_url}/admin/api/users/{user_id}", json={"balance": 0, "reason": "stop"},
                          headers=stack.admin(), timeout=10).status_code == 200
    assert me(stack)["balance_nano_usd"] < 0, "0 minus the hold of the stream in flight"
    assert b"three" in stream.finish()
    (record,) = wait_for_records(stack, 1)
    assert record["cost_nano_usd"] > 0
    assert me(stack)["balance_nano_usd"] == -record["cost_nano_usd"]
    refused = requests.post(stack.base_url + GENERATE, json=PROMPT, headers={"x-goog-api-key": stack.vault_key},
                            timeout=10)
    assert refused.status_code == 402
    wait_for_records(stack, 2)
    assert_billing_check_is_clean(stack)


def test_reused_and_uuid_request_ids_are_each_billed_on_postgresql(own_stack):
    stack = own_stack(key_count=1, backend="postgresql")
    sent = [str(uuid.uuid4())] * 3 + ["same-id-every-time"] * 3
    for request_id in sent:
        response = requests.post(stack.base_url + GENERATE, json=PROMPT, timeout=10,
                                 headers={"x-goog-api-key": stack.vault_key, "X-Request-Id": request_id})
        assert response.status_code == 200 and response.headers["X-Request-Id"] == request_id
    records = wait_for_records(stack, len(sent))
    assert sorted(r["client_request_id"] for r in records) == sorted(sent)
    assert len({r["settlement_id"] for r in records}) == len(sent)
    assert me(stack)["balance_nano_usd"] == 100 * 10**9 - sum(r["cost_nano_usd"] for r in records)
    assert_billing_check_is_clean(stack)
