"""Vault stacks for end-to-end and browser tests: gunicorn in front of a fake upstream.

The fixtures are imported by `tests/conftest.py`, so every test folder can use them.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
import requests

from tests.databases import TEST_DATABASE_URL, create_scratch_database, drop_scratch_database
from tests.e2e.migrated import migrate
from tests.e2e.server import VaultServer, vault_environment
from tests.fake_gemini import FakeGemini


@dataclass
class ProxyStack:
    """A Vault in front of the fake upstream, with a user and a Vault key ready."""

    server: VaultServer
    fake: FakeGemini
    upstream_keys: list[str]
    vault_key: str
    user_token: str
    admin_token: str
    environ: dict[str, str] = field(repr=False)

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def pool(self) -> list[dict]:
        """The admin's view of the pool, with health."""
        listed = requests.get(f"{self.base_url}/admin/api/upstream-keys", params={"per_page": 500},
                              headers=self.admin(), timeout=10)
        return listed.json()["upstream_keys"]


def build_stack(tmp_path, fake: FakeGemini, key_count: int = 3, database_url: str | None = None,
                **settings: str) -> ProxyStack:
    """Migrate a fresh database (SQLite unless given), start gunicorn in front of `fake`, sign a user up."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    upstream_keys = [fake.new_key() for _ in range(key_count)]
    database_url = database_url or f"sqlite:///{tmp_path / 'proxy.sqlite3'}"
    environ = vault_environment(database_url, tmp_path / "instance") | {
        "GEMINI_BASE_URL": fake.base_url,
        "GEMINI_API_KEYS": ",".join(upstream_keys),
        "VAULT_ADMIN_EMAIL": "root@example.com",
        "VAULT_ADMIN_PASSWORD": "admin password",
        "VAULT_POOL_REFRESH_SECONDS": "0.2",
        "VAULT_UPSTREAM_READ_TIMEOUT": "5",
        "WEB_CONCURRENCY": "1",
        "VAULT_DEFAULT_BALANCE": "100.00",
    } | settings
    migrate(environ)
    server = VaultServer(environ).start()
    base = server.base_url
    account = {"email": "ada@example.com", "password": "long enough"}
    assert requests.post(f"{base}/auth/users/", json=account, timeout=30).status_code == 201
    user_token = requests.post(f"{base}/auth/token", json=account, timeout=30).json()["access_token"]
    admin_token = requests.post(f"{base}/auth/token", json={"email": "root@example.com", "password": "admin password"},
                                timeout=30).json()["access_token"]
    vault_key = requests.post(f"{base}/api-keys/", json={"name": "tests"}, timeout=30,
                              headers={"Authorization": f"Bearer {user_token}"}).json()["key"]
    return ProxyStack(server, fake, upstream_keys, vault_key, user_token, admin_token, environ)


@pytest.fixture(scope="session")
def session_fake() -> Iterator[FakeGemini]:
    with FakeGemini() as fake:
        yield fake
    assert not fake.server_errors, "the fake crashed:\n" + "\n".join(fake.server_errors)


@pytest.fixture(scope="session")
def shared_stack(session_fake, tmp_path_factory) -> Iterator[ProxyStack]:
    """One Vault (two gevent workers) for the whole run, for tests that leave the pool healthy.

    It settles each call in its request (`VAULT_SETTLE_DELAY_MS=0`): tests compare snapshots call
    by call; `own_stack` runs the production default (batched settlements).
    """
    stack = build_stack(tmp_path_factory.mktemp("shared-stack"), session_fake, WEB_CONCURRENCY="2",
                        VAULT_SETTLE_DELAY_MS="0")
    yield stack
    stack.server.stop()


@pytest.fixture
def stack(shared_stack) -> ProxyStack:
    """The shared stack with the fake's script and log cleared."""
    shared_stack.fake.reset()
    return shared_stack


@pytest.fixture
def own_stack(tmp_path) -> Iterator[Callable[..., ProxyStack]]:
    """`own_stack(key_count=3, backend="sqlite", **settings)`: a private Vault and fake.

    For tests that disable keys or count money; `backend="postgresql"` puts it on a fresh
    PostgreSQL database of its own.
    """
    stacks: list[ProxyStack] = []
    databases = []

    def build(key_count: int = 3, backend: str = "sqlite", **settings: str) -> ProxyStack:
        database_url = None
        if backend == "postgresql":
            if not TEST_DATABASE_URL:
                pytest.skip("TEST_DATABASE_URL is not set")
            databases.append(create_scratch_database("vault_stack"))
            database_url = databases[-1].render_as_string(hide_password=False)
        fake = FakeGemini().start()
        stack = build_stack(tmp_path / f"stack{len(stacks)}", fake, key_count, database_url, **settings)
        stacks.append(stack)
        return stack

    yield build
    for stack in stacks:
        stack.server.stop()
        stack.fake.stop()
    for database in databases:
        drop_scratch_database(database)
