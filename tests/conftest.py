"""Shared fixtures: the app on SQLite and PostgreSQL, clients, and record builders.

Database tests run once per backend. SQLite gets a fresh file per test; PostgreSQL gets a
database of its own for the whole run (created from `TEST_DATABASE_URL`, dropped at the
end) whose tables are emptied after each test. In CI (`CI` set) a missing
`TEST_DATABASE_URL` is an error, never a silent skip.
"""

import atexit
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from flask import g
from sqlalchemy import create_engine

from tests.databases import TEST_DATABASE_URL, TEST_REDIS_URL, create_scratch_database, drop_scratch_database
from tests.e2e.stacks import own_stack, session_fake, shared_stack, stack  # noqa: F401  (fixtures, used by name)
from tests.fake_gemini.fixtures import fake_gemini  # noqa: F401  (a fixture, used by name)
from tests.redis_servers import black_hole, private_redis  # noqa: F401  (fixtures, used by name)
from tests.speedups import memoize_route_builders
from vault import create_app, pool
from vault.accounts import create_api_key
from vault.billing import balances
from vault.billing.money import usd_to_nano
from vault.extensions import db
from vault.models import User
from vault.runtime import runtime
from vault.security import issue_access_token

TEST_SECRET_KEY = "test-secret-key-" + "x" * 32
TEST_ENCRYPTION_KEY = Fernet.generate_key().decode()
DEFAULT_PASSWORD = "correct horse battery"

memoize_route_builders()


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("CI") and not (TEST_DATABASE_URL and TEST_REDIS_URL):
        raise pytest.UsageError("CI must set TEST_DATABASE_URL and TEST_REDIS_URL")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database owned by this test run."""
    if not TEST_DATABASE_URL:
        pytest.skip("TEST_DATABASE_URL is not set")
    url = create_scratch_database("vault_test")
    yield url.render_as_string(hide_password=False)
    drop_scratch_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """Each database test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'vault.sqlite3'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database_url(request, tmp_path) -> Iterator[str]:
    """An empty database (no tables) of each backend, dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
        return
    if not TEST_DATABASE_URL:
        pytest.skip("TEST_DATABASE_URL is not set")
    url = create_scratch_database("vault_fresh")
    yield url.render_as_string(hide_password=False)
    drop_scratch_database(url)


def app_config(tmp_path, **overrides) -> dict:
    """Settings for an app under test: fixed secrets, no bootstrap, small body limit."""
    return {
        "SECRET_KEY": TEST_SECRET_KEY,
        "VAULT_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "VAULT_INSTANCE_PATH": str(tmp_path / "instance"),
        "VAULT_BOOTSTRAP": False,
        "VAULT_MAX_BODY_BYTES": 64 * 1024,
        "VAULT_SETTLE_DELAY_MS": 0,  # settled in the request: the batched writer has tests of its own
        "VAULT_ALERT_INTERVAL_SECONDS": 0,  # no background alert monitor: tests/alerts drive it themselves
        "TESTING": True,
    } | overrides


@pytest.fixture
def app(database_url: str, tmp_path) -> Iterator:
    """The real app on a clean database, with an app context pushed."""
    app = create_app(app_config(tmp_path, DATABASE_URL=database_url), environ={})

    def fresh_g() -> None:
        # Requests reuse the app context this fixture pushes, and with it `g`, where
        # Flask-Login caches the user and Flask-WTF the CSRF token; each request must
        # start with its own, as in production.
        for name in list(g):
            g.pop(name)

    app.before_request_funcs.setdefault(None, []).insert(0, fresh_g)

    with app.app_context():
        create_schema(database_url)
        yield app
        db.session.remove()
        if db.engine.dialect.name != "sqlite":  # a SQLite file belongs to this test alone
            empty_tables()
        db.engine.dispose()


def create_schema(database_url: str) -> None:
    """Create every table: a new SQLite file is a copy of one made once per run (create_all costs
    tens of milliseconds, a copy well under one)."""
    if not database_url.startswith("sqlite:///"):
        if database_url not in _SERVER_SCHEMAS:  # the run's own database keeps its tables, emptied
            db.create_all()
            _SERVER_SCHEMAS.add(database_url)
        return
    target = Path(database_url.removeprefix("sqlite:///"))
    if target.exists():  # a test that made its database first
        db.create_all()
        return
    global _SQLITE_SCHEMA
    if _SQLITE_SCHEMA is None:
        folder = Path(tempfile.mkdtemp(prefix="vault-schema-"))
        engine = create_engine(f"sqlite:///{folder / 'schema.sqlite3'}")
        db.metadata.create_all(engine)
        engine.dispose()
        atexit.register(shutil.rmtree, folder, True)
        _SQLITE_SCHEMA = folder / "schema.sqlite3"
    db.engine.dispose()  # nothing may hold the file while it is replaced
    shutil.copyfile(_SQLITE_SCHEMA, target)


_SQLITE_SCHEMA: Path | None = None
_SERVER_SCHEMAS: set[str] = set()


def empty_tables() -> None:
    """Delete every row, children first, so the next test starts clean."""
    with db.engine.begin() as connection:
        for table in reversed(db.metadata.sorted_tables):
            connection.execute(table.delete())


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


_PASSWORD_HASHES: dict[tuple, str] = {}


def password_hash(app, password: str) -> str:
    """An argon2id hash of `password` with the app's parameters, made once per run for each pair
    (a hash costs about 20 ms, and the suite makes thousands of users with a handful of passwords)."""
    key = (password, app.config["VAULT_ARGON2_TIME_COST"], app.config["VAULT_ARGON2_MEMORY_KIB"],
           app.config["VAULT_ARGON2_PARALLELISM"])
    if key not in _PASSWORD_HASHES:
        _PASSWORD_HASHES[key] = runtime().passwords.hash(password)
    return _PASSWORD_HASHES[key]


@pytest.fixture
def make_user(app) -> Callable[..., User]:
    """Build and commit a user: `make_user(email=…, is_admin=…, balance="1.00", …)`."""
    counter = iter(range(1, 10_000))

    def build(email: str | None = None, password: str = DEFAULT_PASSWORD, balance: str = "1.00",
              **fields) -> User:
        user = User(
            email=email or f"user{next(counter)}@example.com",
            password_hash=password_hash(app, password),
            balance_nano=usd_to_nano(balance),
            **fields,
        )
        db.session.add(user)
        db.session.commit()
        return user

    return build


@pytest.fixture
def auth_headers(app) -> Callable[[User], dict[str, str]]:
    """`auth_headers(user)`: a Bearer header with a fresh access token for `user`."""

    def headers(user: User) -> dict[str, str]:
        token = issue_access_token(user.id, user.session_version, app.config["SECRET_KEY"], 600)
        return {"Authorization": f"Bearer {token}"}

    return headers


@pytest.fixture
def admin(make_user) -> User:
    """An admin account, root@example.com."""
    return make_user(email="root@example.com", is_admin=True)


@pytest.fixture
def admin_headers(admin, auth_headers) -> dict[str, str]:
    """The admin's Bearer header."""
    return auth_headers(admin)


@pytest.fixture
def restart_app(database_url, tmp_path):
    """`restart_app(encryption_keys, fingerprint_key=None, **settings)`: a fresh app on the test's database, as
    after a restart, used as a context manager (its app context pushed)."""
    apps = []

    @contextmanager
    def start(keys: str, fingerprint_key: str | None = None, **settings):
        app = create_app(app_config(tmp_path, DATABASE_URL=database_url, VAULT_ENCRYPTION_KEY=keys,
                                    VAULT_FINGERPRINT_KEY=fingerprint_key, **settings), environ={})
        apps.append(app)
        with app.app_context():
            yield app
            db.session.remove()

    yield start
    for app in apps:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def make_api_key(app):
    """`make_api_key(user, name="")`: a committed Vault key and its plaintext."""

    def build(user: User, name: str = ""):
        new_key = create_api_key(db.session, user, name)
        db.session.commit()
        return new_key

    return build


@pytest.fixture
def proxied_key(app, request, make_user, make_api_key):
    """`proxied_key(balance="1.00")`: a Vault key (`NewApiKey`) of a new user whose balance is
    recorded as signup credit, with the app in front of the fake upstream and one key in its pool."""
    fake = request.getfixturevalue("fake_gemini")
    app.config["GEMINI_BASE_URL"] = fake.base_url
    runtime().upstream.base_url = fake.base_url
    pool.add_upstream_key(db.session, fake.new_key(), runtime().secret_box)
    db.session.commit()
    runtime().health.refresh(force=True)

    def build(balance: str = "1.00"):
        user = make_user(balance=balance)
        balances.record_signup_credit(db.session, user)
        db.session.commit()
        return make_api_key(user)

    return build


@pytest.fixture
def db_snapshot(app) -> Callable[[], dict]:
    """`db_snapshot()`: every row of every table, to prove a request changed nothing."""

    def snapshot() -> dict:
        db.session.expire_all()
        with db.engine.connect() as connection:
            return {
                table.name: sorted(map(tuple, connection.execute(table.select()).all()), key=repr)
                for table in db.metadata.sorted_tables
            }

    return snapshot
