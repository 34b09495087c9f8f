"""Several gunicorn instances sharing PostgreSQL and Redis, and what happens when either fails."""

import socket
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
import requests

from tests.databases import TEST_DATABASE_URL, TEST_REDIS_URL, create_scratch_database, drop_scratch_database
from tests.e2e.relay import TcpRelay
from tests.e2e.server import VaultServer, flask_cli, vault_environment
from tests.e2e.stacks import ProxyStack
from tests.fake_gemini import FakeGemini, Reply, faults

PROMPT = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def generate(base: str, key: str, model: str = "gemini-2.5-flash") -> requests.Response:
    return requests.post(f"{base}/v1beta/models/{model}:generateContent", json=PROMPT,
                         headers={"x-goog-api-key": key}, timeout=30)


@pytest.fixture
def two_instances(tmp_path):
    """Two gunicorn instances (two gevent workers each) on one PostgreSQL database and one Redis."""
    if not (TEST_DATABASE_URL and TEST_REDIS_URL):
        pytest.skip("TEST_DATABASE_URL and TEST_REDIS_URL are needed")
    database = create_scratch_database("vault_scale")
    fake = FakeGemini().start()
    keys = [fake.new_key() for _ in range(3)]
    environ = vault_environment(database.render_as_string(hide_password=False), tmp_path / "instance") | {
        "GEMINI_BASE_URL": fake.base_url, "GEMINI_API_KEYS": ",".join(keys), "REDIS_URL": TEST_REDIS_URL,
        "VAULT_REDIS_PREFIX": f"vault-test-{uuid.uuid4().hex[:8]}:", "WEB_CONCURRENCY": "2",
        "VAULT_ADMIN_EMAIL": "root@example.com", "VAULT_ADMIN_PASSWORD": "admin password",
        "VAULT_DEFAULT_BALANCE": "100.00",
        # Long enough that only Redis can explain one instance seeing the other's changes.
        "VAULT_POOL_REFRESH_SECONDS": "600",
    }
    assert flask_cli(environ, "db", "upgrade").returncode == 0
    servers = [VaultServer(environ).start(), VaultServer(environ).start()]
    yield servers, fake, keys
    for server in servers:
        server.stop()
    fake.stop()
    drop_scratch_database(database)


def sign_up(base: str) -> tuple[str, dict]:
    account = {"email": f"user-{uuid.uuid4().hex[:6]}@example.com", "password": "long enough"}
    requests.post(f"{base}/auth/users/", json=account, timeout=30).raise_for_status()
    token = requests.post(f"{base}/auth/token", json=account, timeout=30).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    return requests.post(f"{base}/api-keys/", json={}, headers=headers, timeout=30).json()["key"], headers


def admin_headers(base: str) -> dict:
    token = requests.post(f"{base}/auth/token", json={"email": "root@example.com", "password": "admin password"},
                          timeout=30).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def test_instances_share_rotation_cooldowns_and_disables(two_instances):
    (first, second), fake, (key_a, key_b, key_c) = two_instances
    vault_key, _ = sign_up(first.base_url)

    with ThreadPoolExecutor(max_workers=12) as pool:
        bases = [first.base_url, second.base_url] * 30
        assert {r.status_code for r in pool.map(lambda base: generate(base, vault_key), bases)} == {200}
    assert Counter(call.key for call in fake.calls) == {key_a: 20, key_b: 20, key_c: 20}, "one shared round-robin"

    fake.reset()
    fake.enqueue(faults.quota_exceeded("30s"), key=key_a)
    while not any(call.key == key_a for call in fake.calls):
        assert generate(first.base_url, vault_key).status_code == 200
    before = len(fake.requests_for(key_a))
    assert all(generate(second.base_url, vault_key).status_code == 200 for _ in range(9))
    assert len(fake.requests_for(key_a)) == before, "the other instance skips the cooling key"
    assert generate(second.base_url, vault_key, "gemini-2.5-pro").ok  # cooldowns are per model

    pool_view = requests.get(f"{first.base_url}/admin/api/upstream-keys", headers=admin_headers(first.base_url),
                             timeout=10).json()["upstream_keys"]
    key_c_id = next(key["id"] for key in pool_view if key["key"].endswith(key_c[-4:]))
    disabled = requests.patch(f"{first.base_url}/admin/api/upstream-keys/{key_c_id}", json={"state": "disabled"},
                              headers=admin_headers(first.base_url), timeout=10)
    assert disabled.json()["state"] == "disabled"
    fake.reset()
    assert all(generate(second.base_url, vault_key).status_code == 200 for _ in range(8))
    assert not fake.requests_for(key_c), "an admin's disable is honoured by the other instance at once"


def test_rate_limits_are_shared_across_instances(two_instances):
    (first, second), _, _ = two_instances
    vault_key, user_headers = sign_up(first.base_url)
    key_id = requests.get(f"{first.base_url}/api-keys/", headers=user_headers, timeout=10).json()[0]["id"]
    requests.patch(f"{first.base_url}/admin/api/api-keys/{key_id}", json={"rate_limit_rpm": 4},
                   headers=admin_headers(first.base_url), timeout=10).raise_for_status()
    statuses = [generate(base, vault_key).status_code for base in (first.base_url, second.base_url) * 3]
    assert statuses == [200, 200, 200, 200, 429, 429]
    limited = requests.post(f"{second.base_url}/v1/chat/completions", timeout=10,
                            json={"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}]},
                            headers={"Authorization": f"Bearer {vault_key}"})
    assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.json()["error"]["type"] == "rate_limit_error"


def test_redis_down_falls_back_to_local_state(own_stack):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{probe.getsockname()[1]}/0"
    stack = own_stack(key_count=2, REDIS_URL=dead, VAULT_RATE_LIMIT_RPM="2")
    assert [generate(stack.base_url, stack.vault_key).status_code for _ in range(3)] == [200, 200, 429]
    assert Counter(call.key for call in stack.fake.calls) == {key: 1 for key in stack.upstream_keys}
    assert "Redis unavailable" in stack.server.log()
    assert requests.get(f"{stack.base_url}/readyz", timeout=10).json()["redis"] == "down"


@pytest.fixture
def relayed_database():
    """A fresh PostgreSQL database reached through a TcpRelay."""
    if not TEST_DATABASE_URL:
        pytest.skip("TEST_DATABASE_URL is not set")
    database = create_scratch_database("vault_outage")
    relay = TcpRelay((database.host or "127.0.0.1", database.port or 5432))
    yield database.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False), relay
    relay.cut()
    drop_scratch_database(database)


def test_database_outage_fails_closed_and_recovers(tmp_path, relayed_database):
    url, relay = relayed_database
    fake = FakeGemini().start()
    stopping: list[VaultServer] = []  # stopped whatever happens, so a failure leaves no server behind
    try:
        stack_environ = vault_environment(url, tmp_path / "instance") | {
            "GEMINI_BASE_URL": fake.base_url, "GEMINI_API_KEYS": fake.new_key(), "WEB_CONCURRENCY": "1"}
        assert flask_cli(stack_environ, "db", "upgrade").returncode == 0
        server = VaultServer(stack_environ).start()
        stopping.append(server)
        vault_key, _ = sign_up(server.base_url)
        assert generate(server.base_url, vault_key).status_code == 200
        calls = len(fake.calls)

        relay.cut()
        down = generate(server.base_url, vault_key)
        assert down.status_code == 503 and down.json()["error"]["status"] == "UNAVAILABLE"
        chat = requests.post(f"{server.base_url}/v1/chat/completions", timeout=30,
                             json={"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}]},
                             headers={"Authorization": f"Bearer {vault_key}"})
        assert chat.status_code == 503 and chat.json()["error"]["type"] == "server_error"
        assert requests.get(f"{server.base_url}/healthz", timeout=30).status_code == 503
        assert len(fake.calls) == calls, "nothing is served unmetered"

        relay.restore()
        assert generate(server.base_url, vault_key).status_code == 200
        assert "Booting worker" in server.log() and server.log().count("Booting worker") == 1, "no crash loop"
    finally:
        for running in stopping:
            running.stop()
        fake.stop()


def test_a_slow_query_does_not_stall_other_requests(own_stack):
    """psycopg 3 cooperates with gevent: a request waiting on a row lock leaves the worker free."""
    stack = own_stack(key_count=1, backend="postgresql", WEB_CONCURRENCY="1")
    other_key, _ = sign_up(stack.base_url)
    database = stack.environ["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(database) as locker:
        locker.execute("SELECT 1 FROM users WHERE email = 'ada@example.com' FOR UPDATE")
        blocked = ThreadPoolExecutor(max_workers=1).submit(generate, stack.base_url, stack.vault_key)
        assert generate(stack.base_url, other_key).status_code == 200
        assert not blocked.done(), "the first request is still waiting for the row lock"
        locker.rollback()
    assert blocked.result(timeout=30).status_code == 200


def test_sigterm_lets_streams_finish_and_records_them(own_stack):
    stack: ProxyStack = own_stack(key_count=1)
    gate = stack.fake.gated(Reply(chunk_texts=["one ", "two ", "three"]))
    results = {}

    def stream() -> None:
        with requests.post(f"{stack.base_url}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
                           json=PROMPT, headers={"x-goog-api-key": stack.vault_key}, stream=True, timeout=30) as r:
            results["body"] = b"".join(r.iter_content(chunk_size=None))

    reader = threading.Thread(target=stream)
    reader.start()
    assert gate.wait_blocked(timeout=10)
    stopping = threading.Thread(target=stack.server.stop)
    stopping.start()
    assert stack.server.wait_for_log("Handling signal: term")
    gate.open()
    reader.join(timeout=30)
    stopping.join(timeout=60)
    assert b"three" in results["body"] and b'"error"' not in results["body"]
    database = stack.environ["DATABASE_URL"].removeprefix("sqlite:///")
    import sqlite3

    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT status, ending, candidates_tokens FROM usage_records").fetchall()
    assert rows == [(200, "completed", 3)]
