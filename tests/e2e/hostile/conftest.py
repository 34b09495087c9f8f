"""Private Vaults for the hostile-client tests, one per kind of harm, started once for the package.

- `pooled`: five upstream keys (on PostgreSQL when `TEST_DATABASE_URL` is set), for attempts
  that would hurt the pool if the Vault got them wrong (smuggled credentials, foreign
  resources, redirects), so a regression shows here and not as noise in the shared stack.
- `limited`: one worker (so `/metrics` is one process's), a 64 KiB body limit and a
  2-second body deadline.

Both reset their fake before each test; the shared `stack` fixture serves read-only attempts.
They settle each call in its request (`VAULT_SETTLE_DELAY_MS=0`) because these tests compare
before/after snapshots of balances and records call by call; the batched writer is exercised by
the metering, ledger and soak stacks.
"""

from collections.abc import Iterator

import pytest

from tests.databases import TEST_DATABASE_URL, create_scratch_database, drop_scratch_database
from tests.e2e.stacks import ProxyStack, build_stack
from tests.fake_gemini import FakeGemini

BODY_LIMIT = 65536
BODY_DEADLINE = 2


def private_stack(tmp_path_factory, name: str, key_count: int, postgres: bool = False,
                  **settings: str) -> Iterator[ProxyStack]:
    database, database_url = None, None
    if postgres and TEST_DATABASE_URL:
        database = create_scratch_database("vault_hostile")
        database_url = database.render_as_string(hide_password=False)
    fake = FakeGemini().start()
    try:
        stack = build_stack(tmp_path_factory.mktemp(name), fake, key_count, database_url,
                            **({"VAULT_SETTLE_DELAY_MS": "0"} | settings))
        try:
            yield stack
        finally:
            stack.server.stop()
    finally:
        fake.stop()
        if database is not None:
            drop_scratch_database(database)
    assert not fake.server_errors, "the fake crashed:\n" + "\n".join(fake.server_errors)


@pytest.fixture(scope="package")
def pool_stack(tmp_path_factory) -> Iterator[ProxyStack]:
    yield from private_stack(tmp_path_factory, "hostile-pool", 5, postgres=True, WEB_CONCURRENCY="2")


@pytest.fixture(scope="package")
def limits_stack(tmp_path_factory) -> Iterator[ProxyStack]:
    yield from private_stack(tmp_path_factory, "hostile-limits", 2, WEB_CONCURRENCY="1",
                             VAULT_MAX_BODY_BYTES=str(BODY_LIMIT), VAULT_BODY_TIMEOUT_SECONDS=str(BODY_DEADLINE))


@pytest.fixture
def pooled(pool_stack) -> ProxyStack:
    pool_stack.fake.reset()
    return pool_stack


@pytest.fixture
def limited(limits_stack) -> ProxyStack:
    limits_stack.fake.reset()
    return limits_stack
