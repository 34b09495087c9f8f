"""Chaos for the ledger: workers killed with -9 mid-stream, the database cut while streams settle,
clients walking away -- then a restart, and `billing check` is clean with one record per request.

gunicorn + gevent (two workers) on PostgreSQL reached through a TcpRelay that the test cuts.
Holds expire after a few seconds here (`VAULT_HOLD_MAX_AGE_SECONDS`) so the sweeper can act.
"""

import os
import re
import signal
import threading
import time
import uuid

import requests

from tests.e2e.server import VaultServer, flask_cli, vault_environment
from tests.e2e.test_scale_out import relayed_database, sign_up  # noqa: F401  (relayed_database is a fixture)
from tests.fake_gemini import FakeGemini, Reply

STREAM = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
PROMPT = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
HOLD_MAX_AGE = 8.0
BOOTED = re.compile(r"Booting worker with pid: (\d+)")


class Stream:
    """One streamed request with its own X-Request-Id, read on a thread; the fake holds it after one chunk."""

    def __init__(self, base: str, vault_key: str, fake: FakeGemini, walk_away: bool = False):
        self.request_id = uuid.uuid4().hex
        self.gate = fake.gated(Reply(chunk_texts=[f"w{n} " for n in range(8)]))
        self.first_chunk, self.body, self.walk_away = threading.Event(), b"", walk_away
        self._thread = threading.Thread(target=self._read, args=(base, vault_key), daemon=True)
        self._thread.start()
        assert self.first_chunk.wait(timeout=15) and self.gate.wait_blocked(timeout=15)

    def _read(self, base: str, vault_key: str) -> None:
        headers = {"x-goog-api-key": vault_key, "X-Request-Id": self.request_id}
        try:
            with requests.post(base + STREAM, json=PROMPT, headers=headers, stream=True, timeout=30) as response:
                pieces = response.iter_content(chunk_size=None)
                self.body = next(pieces)
                self.first_chunk.set()
                if self.walk_away:
                    return
                for piece in pieces:
                    self.body += piece
        except requests.RequestException:
            pass  # the worker was killed under it
        finally:
            self.first_chunk.set()

    def join(self) -> None:
        self._thread.join(timeout=30)
        assert not self._thread.is_alive()


def wait_until(condition, timeout: float = 30, message: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.05)


def usage_by_request(base: str, admin: dict) -> dict[str, list[dict]]:
    items = requests.get(f"{base}/admin/api/usage?per_page=500", headers=admin, timeout=30).json()["items"]
    found: dict[str, list[dict]] = {}
    for item in items:
        found.setdefault(item["client_request_id"], []).append(item)
    return found


def admin_headers(base: str) -> dict:
    token = requests.post(f"{base}/auth/token", json={"email": "root@example.com", "password": "admin password"},
                          timeout=30).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def test_kills_outages_and_disconnects_leave_the_books_balanced(tmp_path, relayed_database):  # noqa: F811
    url, relay = relayed_database
    fake = FakeGemini().start()
    environ = vault_environment(url, tmp_path / "instance") | {
        "GEMINI_BASE_URL": fake.base_url, "GEMINI_API_KEYS": fake.new_key(), "WEB_CONCURRENCY": "2",
        "VAULT_DEFAULT_BALANCE": "100.00", "VAULT_ADMIN_EMAIL": "root@example.com",
        "VAULT_ADMIN_PASSWORD": "admin password", "VAULT_UPSTREAM_READ_TIMEOUT": "30",
        "VAULT_HOLD_MAX_AGE_SECONDS": str(HOLD_MAX_AGE), "VAULT_SWEEP_INTERVAL_SECONDS": "1",
    }
    assert flask_cli(environ, "db", "upgrade").returncode == 0
    server = VaultServer(environ).start()
    try:
        base = server.base_url
        vault_key, _ = sign_up(base)
        admin = admin_headers(base)
        streams: list[Stream] = []

        # 1. Every worker is killed with -9 while it relays streams: nobody settles them.
        killed = [Stream(base, vault_key, fake) for _ in range(4)]
        streams += killed
        for pid in {int(pid) for pid in BOOTED.findall(server.log())}:
            os.kill(pid, signal.SIGKILL)
        for stream in killed:
            stream.join()
        wait_until(lambda: len(BOOTED.findall(server.log())) >= 4, message="gunicorn boots new workers")
        fake.release_all()

        # 2. Clients walk away mid-stream: settled at once, as disconnected.
        for _ in range(3):
            fake.disconnected.clear()
            stream = Stream(base, vault_key, fake, walk_away=True)
            streams.append(stream)
            stream.join()
            for _ in range(10):
                stream.gate.release(1)
                if fake.wait_disconnect(timeout=2):
                    break

        # 3. The database goes away while a stream settles and comes back within the retries.
        survivor = Stream(base, vault_key, fake)
        streams.append(survivor)
        relay.cut()
        survivor.gate.open()
        survivor.join()
        assert server.wait_for_log("retrying in 1.0s", timeout=10)
        relay.restore()
        wait_until(lambda: survivor.request_id in usage_by_request(base, admin), timeout=10,
                   message="the last retry settles once the database is back")

        # 4. It goes away for longer than every retry: the settlements wait in their worker (logged)
        #    while their holds keep the books exact, and are written once it is back.
        outage = [Stream(base, vault_key, fake) for _ in range(3)]
        streams += outage
        waiting_before = server.log().count("not written")
        relay.cut()
        for stream in outage:
            stream.gate.open()
            stream.join()
        wait_until(lambda: server.log().count("not written") > waiting_before, timeout=20,
                   message="the settlements that cannot be written are logged")
        relay.restore()
        wait_until(lambda: all(stream.request_id in usage_by_request(base, admin) for stream in outage), timeout=20,
                   message="the waiting settlements are written once the database is back")
        assert all(b"w7" in stream.body for stream in [survivor, *outage]), "the clients got whole answers"

        # 5. After the holds expire, a restart sweeps them.
        time.sleep(HOLD_MAX_AGE + 1)
        server.stop()
        server = VaultServer(environ).start()
        base = server.base_url
        # A served request means a worker has booted, and its start-up sweep has settled them all.
        assert requests.get(f"{base}/healthz", timeout=30).status_code == 200
        swept = flask_cli(environ, "billing", "sweep")
        assert swept.returncode == 0 and "Settled 0 abandoned hold(s)." in swept.stdout, swept.stdout

        checked = flask_cli(environ, "billing", "check")
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "0 mismatch(es); 0 open hold(s)" in checked.stdout
        by_request = usage_by_request(base, admin)
        assert {request_id: len(records) for request_id, records in by_request.items()} == {
            stream.request_id: 1 for stream in streams}, "exactly one usage record per request"
        endings = {stream.request_id: by_request[stream.request_id][0]["ending"] for stream in streams}
        assert [endings[s.request_id] for s in killed] == ["abandoned"] * 4
        assert [endings[s.request_id] for s in outage] == ["completed"] * 3
        assert endings[survivor.request_id] == "completed"
        assert {endings[s.request_id] for s in streams[4:7]} == {"client_disconnected"}
        abandoned = [by_request[s.request_id][0] for s in killed]
        assert all(r["usage_source"] == "estimated" and r["status"] == 0 and r["cost"] <= r["hold"]
                   for r in abandoned)
    finally:
        server.stop()
        fake.stop()
