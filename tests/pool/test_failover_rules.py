"""The failover loop's per-request rules, against the loopback fake upstream.

One request blames at most one key (one disable, one breaker strike), a redirect is a 502
at once, and the caller's errors come back once and change nothing.
"""

import json

import pytest

from tests.fake_gemini import Fault
from vault import pool
from vault.errors import NoUpstream, UpstreamFailed
from vault.extensions import db
from vault.models import UpstreamKey, UpstreamKeyState
from vault.pool.health import PoolHealth
from vault.pool.rotator import ALL_MODELS, KeyRotator, RotatorPolicy
from vault.runtime import runtime
from vault.upstream.client import UpstreamClient, UpstreamRequest
from vault.upstream.failover import forward

MODEL = "gemini-2.5-flash"
GENERATE = UpstreamRequest(
    method="POST", path=f"/v1beta/models/{MODEL}:generateContent", query=[],
    headers={"Content-Type": "application/json"},
    body=json.dumps({"contents": [{"role": "user", "parts": [{"text": "Say hi"}]}]}).encode(),
    bearer_auth=False, model=MODEL, streaming=False, dialect="google",
)


def google_fault(code: int, status: str, message: str, reason: str | None = None) -> Fault:
    inner = {"code": code, "message": message, "status": status}
    if reason:
        inner["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
                             "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}]
    return Fault(code, inner)


SERVICE_BLOCKED = google_fault(403, "PERMISSION_DENIED", "Requests to this API are blocked.", "API_KEY_SERVICE_BLOCKED")
FOREIGN_FILE = google_fault(403, "PERMISSION_DENIED",
                            "You do not have permission to access the File abc123 or it may not exist.")
INTERNAL = google_fault(500, "INTERNAL", "An internal error has occurred.")
MOVED = Fault(302, raw=b"<html><body>Moved</body></html>", content_type="text/html; charset=UTF-8")


@pytest.fixture
def breaker_failures():
    return 3


@pytest.fixture
def upstream(app, fake_gemini, breaker_failures):
    """(send, rows): `send()` forwards GENERATE through a three-key pool on the fake; `rows()` reads the pool."""
    vault = runtime()
    secrets = [fake_gemini.new_key() for _ in range(3)]
    pool.add_upstream_keys(db.session, secrets, vault.secret_box)
    db.session.commit()
    policy = RotatorPolicy(breaker_failures=breaker_failures, breaker_seconds=60)
    health = PoolHealth(KeyRotator(policy), vault.session_factory, vault.secret_box, refresh_seconds=0)
    client = UpstreamClient(fake_gemini.base_url, 5, 5, 10)

    def send():
        return forward(GENERATE, client, health, max_retries=2)

    def rows() -> list[UpstreamKey]:
        db.session.expire_all()
        return pool.list_upstream_keys(db.session)

    yield send, rows
    client.close()


def test_two_key_rejections_in_one_request_disable_only_one_key(upstream, fake_gemini):
    send, rows = upstream
    fake_gemini.enqueue(SERVICE_BLOCKED, times=None)
    with pytest.raises(UpstreamFailed):
        send()
    assert len(fake_gemini.calls) == 2, "the second rejection ends the request"
    first, second = (call.key for call in fake_gemini.calls)
    by_key = {key.masked: key for key in rows()}
    states = [key.state for key in by_key.values()]
    assert states.count(UpstreamKeyState.DISABLED) == 1
    disabled = next(key for key in by_key.values() if key.state is UpstreamKeyState.DISABLED)
    assert first.endswith(disabled.masked[-4:])
    untouched = next(key for key in by_key.values() if second.endswith(key.masked[-4:]))
    assert (untouched.state, untouched.last_error, untouched.failure_count) == (UpstreamKeyState.ACTIVE, None, 0)


def test_every_request_disables_at_most_one_key(upstream, fake_gemini):
    send, rows = upstream
    fake_gemini.enqueue(SERVICE_BLOCKED, times=None)
    for expected in (1, 2, 3):
        with pytest.raises(UpstreamFailed):
            send()
        assert [key.state for key in rows()].count(UpstreamKeyState.DISABLED) == expected


def test_a_redirect_is_a_502_at_once_and_changes_no_key(upstream, fake_gemini, db_snapshot):
    send, _ = upstream
    fake_gemini.enqueue(MOVED, times=None)
    before = db_snapshot()
    with pytest.raises(UpstreamFailed) as raised:
        send()
    assert "redirect" in raised.value.message
    assert len(fake_gemini.calls) == 1, "no failover"
    assert db_snapshot() == before


def test_a_403_about_a_named_file_is_returned_once_and_changes_no_key(upstream, fake_gemini, db_snapshot):
    send, _ = upstream
    fake_gemini.enqueue(FOREIGN_FILE, times=None)
    before = db_snapshot()
    for _ in range(6):
        answer = send()
        assert answer.status == 403 and b"permission to access the File" in answer.body
    assert len(fake_gemini.calls) == 6, "no failover"
    assert db_snapshot() == before


def test_a_request_failing_on_every_key_strikes_only_one(upstream, fake_gemini):
    send, rows = upstream
    fake_gemini.enqueue(INTERNAL, times=None)
    for _ in range(3):
        with pytest.raises(UpstreamFailed):
            send()
    resting = [key for key in rows() if any(cooldown.model == ALL_MODELS for cooldown in key.cooldowns)]
    assert len(resting) == 1, "three requests, one strike each: one key rests, not all three"
    assert all(key.state is UpstreamKeyState.ACTIVE and key.last_error == "500 INTERNAL" for key in rows())
    assert sorted(key.failure_count for key in rows()) == [0, 0, 3], "only a request's first failure is counted"


@pytest.mark.parametrize("breaker_failures", [1])
def test_when_every_key_rests_the_answer_is_503_with_retry_after(upstream, fake_gemini):
    send, rows = upstream
    fake_gemini.enqueue(INTERNAL, times=None)
    for _ in range(3):
        with pytest.raises(UpstreamFailed):
            send()
    assert all(key.cooldowns and key.cooldowns[0].model == ALL_MODELS for key in rows())
    calls = len(fake_gemini.calls)
    with pytest.raises(NoUpstream) as raised:
        send()
    assert 55 <= raised.value.retry_after <= 60
    assert len(fake_gemini.calls) == calls, "resting keys are not called"
