"""What the benchmark measures: the fake upstream, the floor and the Vault, started and addressed.

`Endpoint` is one way of calling one target (its URL, headers and bodies, and the pid whose
process tree is measured). The start functions launch each process the way its users would:
the fake and the floor from bench/, the Vault the way README does
(`flask --app wsgi db upgrade`, then `gunicorn -c gunicorn.conf.py wsgi:app`, one worker), then
sign up a bench user and mint a Vault key through the JSON API. Every server binds port 0 and
the harness reads the port it got from its log, so no port is ever guessed.
"""

import json
import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from bench.processes import (
    LOAD_CPUS,
    SUT_CPUS,
    Service,
    Services,
    pinned,
    run_bounded,
    wait_for_log_line,
    wait_http,
)

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
BIN = Path(sys.executable).parent
MODEL = "gemini-2.0-flash"
UPSTREAM_KEYS = ("AIzaBenchUpstreamKey0000000000000000001", "AIzaBenchUpstreamKey0000000000000000002")
FLOOR_KEY = "bench-floor-client-key"
BENCH_ACCOUNT = {"email": "bench@example.com", "password": "bench-password-123"}
GUNICORN_LISTENING = r"Listening at: (http://127\.0\.0\.1:\d+)"
PROMPT = "Write one sentence about foxes."
BODIES = {
    ("gemini", False): {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
                        "generationConfig": {"maxOutputTokens": 64}},
    ("openai", False): {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 64},
}
BODIES["gemini", True] = BODIES["gemini", False]
BODIES["openai", True] = BODIES["openai", False] | {"stream": True}
# Settings the bench decides for the Vault; anything the shell exported under these names is dropped.
OWNED_PREFIXES = ("VAULT_", "GEMINI_")
OWNED_NAMES = {"DATABASE_URL", "REDIS_URL", "WEB_CONCURRENCY", "PROMETHEUS_MULTIPROC_DIR", "SECRET_KEY"}


@dataclass(frozen=True)
class Endpoint:
    """One target called in one API shape (`gemini` native or `openai`-compatible)."""

    label: str
    base_url: str
    api: str
    key: str
    pid: int | None = None

    def request(self, stream: bool) -> tuple[str, dict[str, str], str]:
        """(URL, headers, JSON body) of a call, streamed or not."""
        body = json.dumps(BODIES[self.api, stream], separators=(",", ":"))
        if self.api == "openai":
            return f"{self.base_url}/v1/chat/completions", {"Authorization": f"Bearer {self.key}"}, body
        action = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return f"{self.base_url}/v1beta/models/{MODEL}:{action}", {"x-goog-api-key": self.key}, body


@dataclass
class Gateway:
    """A started gateway process (floor or Vault): where it listens and how to call it."""

    name: str
    service: Service
    base_url: str
    key: str
    apis: tuple[str, ...]

    def endpoints(self) -> list[Endpoint]:
        """One endpoint per API shape; labelled `vault/gemini`, `vault/openai`, or just `floor`."""
        label = (lambda api: self.name) if len(self.apis) == 1 else (lambda api: f"{self.name}/{api}")
        return [Endpoint(label(api), self.base_url, api, self.key, self.service.pid) for api in self.apis]


def start_fake(services: Services, chunks: int, delay_ms: float, name: str = "fake") -> tuple[Service, str]:
    """Start the fake upstream on the load CPUs; the service and its base URL."""
    argv = pinned(LOAD_CPUS, [sys.executable, "-m", "bench.fake_upstream", "--port", "0", "--chunks", str(chunks),
                              "--delay-ms", str(delay_ms)])
    service = services.start(name, argv, dict(os.environ), cwd=PROJECT_ROOT)
    with stopped_on_failure(services, service):
        return service, wait_for_log_line(service, r"listening on (http://127\.0\.0\.1:\d+)", timeout=30).group(1)


@contextmanager
def stopped_on_failure(services: Services, service: Service) -> Iterator[None]:
    """Stop `service` at once if it fails to come up, so a failed target leaves nothing running."""
    try:
        yield
    except BaseException:
        services.stop(service)
        raise


def start_floor(services: Services, upstream: str, connections: int, name: str = "floor") -> Gateway:
    """Start the floor (bench/floor.py) under gunicorn + gevent, one worker, on the SUT CPUs."""
    env = dict(os.environ, FLOOR_UPSTREAM=upstream, FLOOR_CLIENT_KEY=FLOOR_KEY,
               XDG_RUNTIME_DIR=str(_private_dir(services, f"{name}-run")))
    argv = pinned(SUT_CPUS, [str(BIN / "gunicorn"), "-c", os.devnull, "-k", "gevent", "-w", "1",
                             "--worker-connections", str(connections), "-b", "127.0.0.1:0", "floor:create_app()"])
    service = services.start(name, argv, env, cwd=BENCH_DIR)
    with stopped_on_failure(services, service):
        base_url = wait_for_log_line(service, GUNICORN_LISTENING, timeout=60).group(1)
        wait_http(base_url + "/v1beta/models", service)
    return Gateway("floor", service, base_url, FLOOR_KEY, ("gemini",))


def vault_environment(services: Services, upstream: str, database_url: str | None, connections: int | None
                      ) -> dict[str, str]:
    """The Vault's environment: inherited minus what the bench decides, plus the bench's settings."""
    folder = _private_dir(services, "vault-instance")
    env = {name: value for name, value in os.environ.items()
           if name not in OWNED_NAMES and not name.startswith(OWNED_PREFIXES)}
    env |= {
        "DATABASE_URL": database_url or f"sqlite:///{folder / 'vault.sqlite3'}",
        "VAULT_INSTANCE_PATH": str(folder), "GEMINI_BASE_URL": upstream, "GEMINI_API_KEYS": ",".join(UPSTREAM_KEYS),
        "VAULT_DEFAULT_BALANCE": "1000000", "WEB_CONCURRENCY": "1", "VAULT_BIND": "127.0.0.1:0",
        "XDG_RUNTIME_DIR": str(_private_dir(services, "vault-run")),
    }
    if connections:
        env["VAULT_WORKER_CONNECTIONS"] = str(connections)
    return env


def start_vault(services: Services, upstream: str, database_url: str | None, connections: int | None = None,
                name: str = "vault") -> Gateway:
    """Migrate, start the Vault as README does on the SUT CPUs, and mint a bench Vault key."""
    env = vault_environment(services, upstream, database_url, connections)
    run_bounded([str(BIN / "flask"), "--app", "wsgi", "db", "upgrade"], env | {"VAULT_BOOTSTRAP": "false"},
                timeout=180, cwd=PROJECT_ROOT)
    argv = pinned(SUT_CPUS, [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"])
    service = services.start(name, argv, env, cwd=PROJECT_ROOT)
    with stopped_on_failure(services, service):
        base_url = wait_for_log_line(service, GUNICORN_LISTENING, timeout=90).group(1)
        wait_http(base_url + "/healthz", service, timeout=90)
        key = mint_vault_key(base_url)
    return Gateway("vault", service, base_url, key, ("gemini", "openai"))


def mint_vault_key(base_url: str) -> str:
    """Sign the bench user up (already there on a reused database: fine), log in and create a Vault key."""
    signup = requests.post(base_url + "/auth/users/", json=BENCH_ACCOUNT, timeout=30)
    if signup.status_code != 409:
        signup.raise_for_status()
    token = post_json(base_url + "/auth/token", BENCH_ACCOUNT)["access_token"]
    return post_json(base_url + "/api-keys/", {"name": "bench"}, token)["key"]


def post_json(url: str, payload: dict, token: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = requests.post(url, json=payload, headers=headers, timeout=30)
    answer.raise_for_status()
    return answer.json()


def _private_dir(services: Services, name: str) -> Path:
    # One folder per started server: gunicorn's control socket ($XDG_RUNTIME_DIR), the Vault's instance.
    folder = services.workdir / f"{name}-{secrets.token_hex(3)}"
    folder.mkdir(mode=0o700)
    return folder
