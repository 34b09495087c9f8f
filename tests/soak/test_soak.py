"""Soak: two Vault instances on one PostgreSQL and one Redis, under steady mixed traffic while
keys fail and recover, Redis restarts and stalls and PostgreSQL is cut -- and afterwards the
shared state is still true: every request answered or cleanly refused, one usage record per
served request, balanced books, an even rotation and no active key left out of it.

SOAK_SECONDS sets how long the traffic runs (default 45, so the test fits the normal suite in
about a minute; `make soak` runs it for longer). The chaos happens at fixed fractions of it.
"""

import json
import os
import shutil
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import psycopg
import pytest
import requests

from tests.databases import TEST_DATABASE_URL, create_scratch_database, drop_scratch_database
from tests.e2e.relay import TcpRelay
from tests.e2e.server import VaultServer, flask_cli, vault_environment
from tests.fake_gemini import FakeGemini, faults
from tests.redis_servers import PrivateRedis

pytestmark = pytest.mark.soak

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "45"))
CLIENTS = 6
KEYS = 4
MODEL = "gemini-2.5-flash"
PROMPT = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
ADMIN = {"email": "root@example.com", "password": "admin password"}
OUTAGE_SECONDS = 3.0
HOLD_MAX_AGE = 15.0
# (connect, read): well past the Vault's own upstream timeout (5 s) and Redis timeout (0.25 s).
CLIENT_TIMEOUT = (5, 20)


@dataclass
class Outcome:
    """One request of the soak as the client saw it."""

    request_id: str
    kind: str
    instance: int
    started: float
    finished: float
    status: int | None = None  # None: no HTTP answer at all
    problem: str = ""  # why the answer is not a clean success or a clean refusal

    @property
    def served(self) -> bool:
        return self.status is not None and 200 <= self.status < 300 and not self.problem


def dialect_error(kind: str, response: requests.Response) -> str:
    """'' when `response` is a refusal in the caller's dialect, else what is wrong with it."""
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return f"{response.status_code} without a JSON error body: {response.text[:200]!r}"
    if kind.startswith("native"):
        ok = error.get("code") == response.status_code and isinstance(error.get("status"), str) and error.get("message")
    else:
        ok = isinstance(error.get("type"), str) and error.get("message")
    return "" if ok else f"{response.status_code} error not in the {kind} dialect: {error!r}"


def call(base: str, vault_key: str, kind: str, request_id: str) -> tuple[int, str]:
    """Send one request of `kind`; (status, problem) with problem '' for a whole answer or clean refusal."""
    native = {"x-goog-api-key": vault_key, "X-Request-Id": request_id}
    bearer = {"Authorization": f"Bearer {vault_key}", "X-Request-Id": request_id}
    stream = kind.endswith("stream")
    if kind == "native":
        url, body, headers = f"{base}/v1beta/models/{MODEL}:generateContent", PROMPT, native
    elif kind == "native-stream":
        url, body, headers = f"{base}/v1beta/models/{MODEL}:streamGenerateContent?alt=sse", PROMPT, native
    else:
        url, body, headers = f"{base}/v1/chat/completions", CHAT | {"stream": stream}, bearer
    with requests.post(url, json=body, headers=headers, stream=stream, timeout=CLIENT_TIMEOUT) as response:
        if response.status_code >= 300:
            return response.status_code, dialect_error(kind, response)
        text = response.content.decode()
    if kind == "native":
        whole = bool(json.loads(text).get("candidates"))
    elif kind == "native-stream":
        whole = text.count("data: ") >= 1 and '"finishReason"' in text and '"error"' not in text
    elif kind == "openai":
        whole = bool(json.loads(text).get("choices"))
    else:
        whole = text.rstrip().endswith("data: [DONE]") and '"error"' not in text
    return response.status_code, "" if whole else f"incomplete {kind} answer: {text[-300:]!r}"


class Traffic:
    """CLIENTS threads sending native, native-stream, openai and openai-stream calls to both instances."""

    KINDS = ("native", "native-stream", "openai", "openai-stream")

    def __init__(self, bases: list[str], vault_key: str):
        self.bases, self.vault_key = bases, vault_key
        self.outcomes: list[Outcome] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=CLIENTS)
        self._futures = [self._pool.submit(self._client, n) for n in range(CLIENTS)]

    def _client(self, number: int) -> None:
        turn = number
        while not self.stopping.is_set():
            kind, instance = self.KINDS[turn % 4], (turn // 4 + number) % len(self.bases)
            turn += 1
            outcome = Outcome(uuid.uuid4().hex, kind, instance, time.monotonic(), 0.0)
            try:
                outcome.status, outcome.problem = call(self.bases[instance], self.vault_key, kind, outcome.request_id)
            except requests.RequestException as exc:
                outcome.problem = f"no answer: {type(exc).__name__}: {exc}"
            outcome.finished = time.monotonic()
            with self._lock:
                self.outcomes.append(outcome)

    def stop(self) -> list[Outcome]:
        self.stopping.set()
        for future in self._futures:
            future.result(timeout=60)  # re-raises a client thread's own bug
        self._pool.shutdown()
        return self.outcomes


def wait_until(condition, timeout: float, message: str, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(every)


def redis_up(base: str) -> bool:
    return requests.get(f"{base}/readyz", timeout=10).json().get("redis") == "up"


def healthy(base: str) -> bool:
    return requests.get(f"{base}/healthz", timeout=10).status_code == 200


@pytest.fixture
def soak_world(tmp_path):
    """Fake upstream, private Redis behind a relay, scratch PostgreSQL behind a relay; all stopped after."""
    if not TEST_DATABASE_URL:
        pytest.skip("TEST_DATABASE_URL is not set")
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    database = create_scratch_database("vault_soak")
    fake = FakeGemini().start()
    redis_server = PrivateRedis(tmp_path).start()
    redis_relay = TcpRelay(("127.0.0.1", redis_server.port))
    pg_relay = TcpRelay((database.host or "127.0.0.1", database.port or 5432))
    servers: list[VaultServer] = []
    try:
        yield database, fake, redis_server, redis_relay, pg_relay, servers
    finally:
        for server in servers:
            server.stop()
        pg_relay.cut()
        redis_relay.cut()
        redis_server.stop()
        fake.stop()
        drop_scratch_database(database)


def test_soak_keeps_shared_state_true(tmp_path, soak_world):
    database, fake, redis_server, redis_relay, pg_relay, servers = soak_world
    direct_url = database.render_as_string(hide_password=False)
    relayed_url = database.set(host="127.0.0.1", port=pg_relay.port).render_as_string(hide_password=False)
    keys = [fake.new_key() for _ in range(KEYS)]
    environ = vault_environment(relayed_url, tmp_path / "instance") | {
        "GEMINI_BASE_URL": fake.base_url, "GEMINI_API_KEYS": ",".join(keys), "WEB_CONCURRENCY": "2",
        "REDIS_URL": redis_relay.url, "VAULT_REDIS_PREFIX": f"soak-{uuid.uuid4().hex[:8]}:",
        "VAULT_REDIS_TIMEOUT_SECONDS": "0.25", "VAULT_REDIS_RETRY_SECONDS": "0.5",
        "VAULT_ADMIN_EMAIL": ADMIN["email"], "VAULT_ADMIN_PASSWORD": ADMIN["password"],
        "VAULT_DEFAULT_BALANCE": "1000.00", "VAULT_POOL_REFRESH_SECONDS": "1",
        "VAULT_UPSTREAM_READ_TIMEOUT": "5", "VAULT_KEY_BREAKER_SECONDS": "3",
        "VAULT_HOLD_MAX_AGE_SECONDS": str(HOLD_MAX_AGE), "VAULT_SWEEP_INTERVAL_SECONDS": "1",
    }
    direct_environ = environ | {"DATABASE_URL": direct_url}
    upgraded = flask_cli(direct_environ, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    servers += [VaultServer(environ).start(), VaultServer(environ).start()]
    bases = [server.base_url for server in servers]

    account = {"email": "soak@example.com", "password": "long enough"}
    requests.post(f"{bases[0]}/auth/users/", json=account, timeout=30).raise_for_status()
    user = {"Authorization": "Bearer " + requests.post(f"{bases[0]}/auth/token", json=account,
                                                       timeout=30).json()["access_token"]}
    vault_key = requests.post(f"{bases[0]}/api-keys/", json={"name": "soak"}, headers=user, timeout=30).json()["key"]
    admin = {"Authorization": "Bearer " + requests.post(f"{bases[0]}/auth/token", json=ADMIN,
                                                        timeout=30).json()["access_token"]}

    traffic = Traffic(bases, vault_key)
    started = time.monotonic()
    windows: dict[str, tuple[float, float]] = {}

    def at(fraction: float) -> None:
        """Let the traffic run until `fraction` of SOAK_SECONDS has passed (the soak's clock, not a guess)."""
        traffic.stopping.wait(max(0.0, started + fraction * SOAK_SECONDS - time.monotonic()))

    def key_faults(key: str, *answers) -> tuple[float, float]:
        """Queue `answers` on `key` and wait until the Vault has met them all."""
        begun = time.monotonic()
        for answer in answers:
            fake.enqueue(answer, key=key)
        wait_until(lambda: not fake.pending(), 30, f"the faults queued on {key} are met")
        return begun, time.monotonic()

    try:
        at(0.10)  # a key is rate-limited (short retry hint), then its 5xx trip its breaker
        windows["quota"] = key_faults(keys[0], faults.quota_exceeded("2s"), faults.quota_exceeded("2s"))
        at(0.20)
        windows["5xx"] = key_faults(keys[1], faults.internal(), faults.unavailable(), faults.internal())

        at(0.30)  # Redis restarts, empty
        begun = time.monotonic()
        redis_server.stop()
        redis_server.start()
        wait_until(lambda: all(redis_up(base) for base in bases), 30, "both instances use Redis again")
        windows["redis restart"] = (begun, time.monotonic())

        at(0.42)  # Redis stops answering for a few seconds
        begun = time.monotonic()
        redis_relay.stall()
        traffic.stopping.wait(OUTAGE_SECONDS)
        redis_relay.restore()
        wait_until(lambda: all(redis_up(base) for base in bases), 30, "both instances use Redis again")
        windows["redis stall"] = (begun, time.monotonic())

        at(0.55)  # PostgreSQL is cut for a few seconds
        begun = time.monotonic()
        pg_relay.cut()
        traffic.stopping.wait(OUTAGE_SECONDS)
        pg_relay.restore()
        wait_until(lambda: all(healthy(base) for base in bases), 30, "both instances reach PostgreSQL again")
        windows["postgres cut"] = (begun, time.monotonic())

        at(0.65)  # one more key failure and recovery (a 503 then a 429 on another key)
        windows["late faults"] = key_faults(keys[2], faults.unavailable(), faults.quota_exceeded("1s"))
        last_fault = max(call.finished or call.started for call in fake.calls if call.outcome == "fault")

        # Calm: from the moment every key has answered successfully after the last fault.
        def back_in_rotation() -> float | None:
            after = [c for c in fake.calls if c.started > last_fault and c.outcome == "ok"]
            firsts = {}
            for c in after:
                firsts.setdefault(c.key, c.started)
            return max(firsts.values()) if len(firsts) == KEYS else None

        wait_until(lambda: back_in_rotation() is not None, 30, "every key is back in rotation after its faults")
        calm_from = back_in_rotation()
        at(1.0)
    finally:
        outcomes = traffic.stop()
    calm_to = time.monotonic()
    assert calm_to - calm_from >= 0.15 * SOAK_SECONDS, "the calm tail is long enough to judge the spread"

    # 1. Every request was answered: served whole, or (only while PostgreSQL was cut) refused with a clean 503.
    cut_from, cut_to = windows["postgres cut"]
    refusals = [o for o in outcomes if not o.served]
    wrong = [o for o in refusals
             if o.problem or o.status != 503 or not (o.started <= cut_to and o.finished >= cut_from)]
    assert not wrong, "\n".join(f"{o.kind} @{o.started - started:.1f}s on #{o.instance}: {o.status} {o.problem}"
                                for o in wrong[:20])
    assert any(o.status == 503 for o in refusals), "the PostgreSQL cut was felt (and refused cleanly)"
    for name, (begun, ended) in windows.items():
        if name != "postgres cut":
            assert any(o.served and o.started <= ended and o.finished >= begun for o in outcomes), \
                f"traffic was served during {name}"
    served = [o for o in outcomes if o.served]
    assert {o.kind for o in served} == set(Traffic.KINDS) and {o.instance for o in served} == {0, 1}

    # 2. The books: abandoned holds are swept, every balance checks out, nothing is left open.
    def open_holds() -> int:
        with psycopg.connect(direct_url.replace("postgresql+psycopg://", "postgresql://")) as connection:
            return connection.execute("SELECT count(*) FROM pending_holds").fetchone()[0]

    def swept_all() -> bool:
        swept = flask_cli(direct_environ, "billing", "sweep")
        assert swept.returncode == 0, swept.stdout + swept.stderr
        return open_holds() == 0

    wait_until(swept_all, HOLD_MAX_AGE + 30, "every hold is settled or swept", every=1.0)
    checked = flask_cli(direct_environ, "billing", "check")
    assert checked.returncode == 0 and "0 mismatch(es); 0 open hold(s)" in checked.stdout, \
        checked.stdout + checked.stderr

    # 3. Exactly one usage record per served request; none twice, none for a request never sent.
    with psycopg.connect(direct_url.replace("postgresql+psycopg://", "postgresql://")) as connection:
        rows = connection.execute("SELECT client_request_id, ending FROM usage_records").fetchall()
    records = Counter(request_id for request_id, _ in rows)
    sent = {o.request_id for o in outcomes}
    assert all(records[o.request_id] == 1 for o in served), "one record per served request"
    assert max(records.values()) == 1, "no request has two records"
    assert set(records) <= sent, "no record for a request the soak did not send"
    endings = Counter(ending for _, ending in rows)

    # 4. Rotation: over the calm tail (every key healthy again), the successful upstream calls of
    #    both instances spread evenly, within ±20 % of the mean, across all keys.
    calm = Counter(c.key for c in fake.calls if c.outcome == "ok" and calm_from <= c.started <= calm_to)
    mean = sum(calm.values()) / KEYS
    spread = {key[-4:]: round(calm[key] / mean - 1, 3) for key in keys}
    assert all(abs(share) <= 0.20 for share in spread.values()), f"calm spread {dict(calm)} vs mean {mean}"

    # 5. No key out of rotation that the database says is active: each instance picks every one.
    pool = requests.get(f"{bases[0]}/admin/api/upstream-keys?per_page=500", headers=admin,
                        timeout=10).json()["upstream_keys"]
    active = {key["key"][-4:] for key in pool if key["state"] == "active"}
    assert len(active) == KEYS, pool
    for base in bases:
        fake.reset()
        with ThreadPoolExecutor(max_workers=4) as clients:
            statuses = list(clients.map(lambda _, base=base: call(base, vault_key, "native", uuid.uuid4().hex),
                                        range(8 * KEYS)))
        assert all(status == (200, "") for status in statuses), statuses
        assert {c.key[-4:] for c in fake.calls} == active, f"{base} picks every active key"

    print(f"\nsoak {SOAK_SECONDS:.0f}s: {len(outcomes)} requests, {len(served)} served, "
          f"{len(refusals)} refused (503 during the PostgreSQL cut); {len(rows)} usage records "
          f"{dict(endings)}; calm spread {dict(calm)} (deviation {spread}); "
          f"windows { {k: (round(a - started, 1), round(b - started, 1)) for k, (a, b) in windows.items()} }")
