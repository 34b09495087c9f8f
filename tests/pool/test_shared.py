"""The breaker shared through Redis: strikes from every worker add up, and a rest is seen by all."""

import time
import uuid

import pytest

from tests.databases import TEST_REDIS_URL
from vault.pool.rotator import ALL_MODELS, NoUsableKey, PoolKey, PoolSnapshot, RotatorPolicy
from vault.pool.shared import SharedKeyRotator, connect

POLICY = RotatorPolicy(breaker_failures=3, breaker_seconds=0.5)
KEYS = [PoolKey(n, f"secret-{n}", f"k{n}") for n in (1, 2)]


@pytest.fixture
def workers():
    """Two rotators (two workers) on one Redis, under a prefix of their own."""
    if not TEST_REDIS_URL:
        pytest.skip("TEST_REDIS_URL is not set")
    client = connect(TEST_REDIS_URL)
    prefix = f"vault-test-{uuid.uuid4().hex[:8]}:pool:"
    rotators = [SharedKeyRotator(client, POLICY, prefix=prefix) for _ in range(2)]
    for rotator in rotators:
        rotator.load(PoolSnapshot(list(KEYS)))
    yield rotators
    names = list(client.scan_iter(match=prefix + "*"))
    if names:
        client.delete(*names)


def test_strikes_from_every_worker_add_up_and_the_rest_is_shared(workers):
    first, second = workers
    assert first.faltered(1) == (1, None)
    assert second.faltered(1) == (2, None)
    strikes, until = first.faltered(1)
    assert strikes == 3 and until == pytest.approx(time.time() + 0.5, abs=0.2)
    assert {second.pick("m").id for _ in range(4)} == {2}
    assert {second.pick("other").id for _ in range(4)} == {2}, "a rest holds for every model"
    with pytest.raises(NoUsableKey) as raised:
        second.pick("m", exclude={2})
    assert raised.value.resting and 0 < raised.value.retry_after <= 0.5
    time.sleep(0.6)
    assert {second.pick("m").id for _ in range(4)} == {1, 2}
    assert second.faltered(1) == (1, None), "the count starts over after a rest"


def test_a_success_anywhere_ends_the_streak(workers):
    first, second = workers
    first.faltered(1)
    first.faltered(1)
    second.succeeded(1, "m")
    assert first.faltered(1) == (1, None)


def test_an_admin_enable_ends_a_rest(workers):
    first, second = workers
    for _ in range(3):
        first.faltered(1)
    second.enable(1)
    assert {first.pick("m").id for _ in range(4)} == {1, 2}


def test_a_stored_rest_is_seeded_into_redis(workers):
    first, second = workers
    first.load(PoolSnapshot(list(KEYS), cooldowns={(1, ALL_MODELS): time.time() + 30}))
    assert {second.pick("m").id for _ in range(4)} == {2}
