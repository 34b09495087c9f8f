"""State shared through Redis: strikes from every worker add up, a rest is seen by all, and Redis
follows the database -- every entry expires or is re-derived, `load()` reconciles both ways,
and what a worker recorded while Redis was away is written back when it returns."""

import time
import uuid

import pytest

from tests.databases import TEST_REDIS_URL
from vault.pool.rotator import (
    ALL_MODELS,
    INDEFINITELY,
    RECENT_SECONDS,
    NoUsableKey,
    PoolChanged,
    PoolKey,
    PoolSnapshot,
    RotatorPolicy,
)
from vault.pool.shared import STREAK_TTL_SECONDS, SharedKeyRotator, connect
from vault.redisguard import RedisGuard

POLICY = RotatorPolicy(breaker_failures=3, breaker_seconds=0.5)
KEYS = [PoolKey(n, f"secret-{n}", f"k{n}") for n in (1, 2)]


@pytest.fixture
def shared():
    """A Redis client and a prefix of this test's own (removed afterwards)."""
    if not TEST_REDIS_URL:
        pytest.skip("TEST_REDIS_URL is not set")
    client = connect(TEST_REDIS_URL)
    prefix = f"vault-test-{uuid.uuid4().hex[:8]}:pool:"
    yield client, prefix
    names = list(client.scan_iter(match=prefix + "*"))
    if names:
        client.delete(*names)


@pytest.fixture
def workers(shared):
    """Two rotators (two workers) on one Redis."""
    client, prefix = shared
    rotators = [SharedKeyRotator(client, POLICY, prefix=prefix) for _ in range(2)]
    for rotator in rotators:
        rotator.load(PoolSnapshot(list(KEYS)))
    return rotators


def test_strikes_from_every_worker_add_up_and_the_rest_is_shared(workers):
    first, second = workers
    assert first.faltered(1) == (1, None)
    assert second.faltered(1) == (2, None)
    strikes, until = first.faltered(1)
    assert strikes == 3 and until == pytest.approx(time.time() + 0.5, abs=0.2)
    assert {second.pick("m").id for _ in range(4)} == {2}
    assert {second.pick("other").id for _ in range(4)} == {2}, "a rest holds for every model"
    second.rate_limited(2, "m", retry_after=5)
    with pytest.raises(NoUsableKey) as raised:
        second.pick("m")
    assert raised.value.resting and 0 < raised.value.retry_after <= 0.5
    second.enable(2)
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


# Redis is a cache of the database: every entry expires or is re-derived, and load() reconciles both ways.

def later(seconds: float = RECENT_SECONDS + 1) -> float:
    """A snapshot read this long from now: whatever Redis holds now is older than it."""
    return time.time() + seconds


def redis_names(client, prefix: str) -> dict[str, int]:
    """Every name under the prefix (without it) with its PTTL."""
    return {name.decode()[len(prefix):]: client.pttl(name) for name in client.scan_iter(match=prefix + "*")}


def test_a_timed_disable_ends_the_failure_streak(shared):
    client, prefix = shared
    policy = RotatorPolicy(max_failures=2, disable_seconds=0.3)
    first, second = (SharedKeyRotator(client, policy, prefix=prefix) for _ in range(2))
    first.load(PoolSnapshot(list(KEYS)))
    assert first.failed(1) == (1, None)
    failures, until = second.failed(1)
    assert failures == 2 and until is not None
    assert {first.pick("m").id for _ in range(4)} == {2}
    time.sleep(0.4)
    assert first.failed(1) == (1, None), "one failure after a timed disable does not disable again"
    assert 1 in {first.pick("m").id for _ in range(4)}


def test_load_clears_what_the_database_no_longer_says(workers, shared):
    first, second = workers
    client, prefix = shared
    first.rejected(1)
    first.rate_limited(2, "m", retry_after=60)
    first.rate_limited(1, "other", retry_after=60)
    with pytest.raises(NoUsableKey):
        second.pick("m")
    # An admin enabled key 1 and lifted key 2's cooldown while this Redis was unreachable.
    second.load(PoolSnapshot(list(KEYS), read_at=later()))
    assert {second.pick("m").id for _ in range(4)} == {1, 2}
    assert redis_names(client, prefix).keys() <= {"cursor", "version", "index"}


def test_load_writes_what_the_database_says(workers, shared):
    first, second = workers
    client, prefix = shared
    first.load(PoolSnapshot(list(KEYS), disabled_until={1: INDEFINITELY}, cooldowns={(2, "m"): time.time() + 30},
                            failures={2: 2}, read_at=time.time()))
    names = redis_names(client, prefix)
    assert names["disabled:1"] == -1, "no end: re-derived from the database by every load"
    assert 0 < names["cool:2:m"] <= 30_000 and 0 < names["failures:2"] <= STREAK_TTL_SECONDS * 1000
    with pytest.raises(NoUsableKey) as raised:
        second.pick("m")
    assert 25 < raised.value.retry_after <= 30
    assert second.pick("other").id == 2


def test_a_deleted_keys_entries_vanish(workers, shared):
    first, second = workers
    client, prefix = shared
    first.rate_limited(2, "m", until=time.time() + 80_000)  # a per-day quota
    first.faltered(2)
    first.load(PoolSnapshot([KEYS[0]], read_at=later()))
    names = redis_names(client, prefix)
    assert not [name for name in names if name.startswith(("cool:2", "disabled:2", "failures:2"))]
    assert all(ttl >= 0 for name, ttl in names.items() if name not in ("index",)), names


def test_entries_newer_than_the_snapshot_are_kept(workers):
    first, second = workers
    read_at = time.time()
    second.rate_limited(1, "m", retry_after=30)  # recorded after the snapshot was read
    first.load(PoolSnapshot(list(KEYS), read_at=read_at))
    assert {first.pick("m").id for _ in range(4)} == {2}


def test_every_entry_expires_or_is_re_derived(workers, shared):
    first, second = workers
    client, prefix = shared
    policy_first = RotatorPolicy(max_failures=5, breaker_failures=3, breaker_seconds=30)
    rotator = SharedKeyRotator(client, policy_first, prefix=prefix)
    rotator.load(PoolSnapshot(list(KEYS)))
    rotator.pick("m")
    rotator.failed(1)
    rotator.faltered(2)
    rotator.rate_limited(1, "m", retry_after=30)
    rotator.announce()
    names = redis_names(client, prefix)
    assert {"cursor", "version", "failures:1", "strikes:2", "cool:1:m", "index"} <= names.keys()
    assert all(ttl > 0 for name, ttl in names.items() if name != "index"), names
    rotator.rejected(2)  # no end: the database holds it, and every load writes or clears it
    first.load(PoolSnapshot(list(KEYS), read_at=later()))
    assert "disabled:2" not in redis_names(client, prefix)


def test_an_announced_change_makes_every_other_worker_re_read(workers):
    first, second = workers
    first.announce()
    assert second.needs_reload() is False
    with pytest.raises(PoolChanged):
        second.pick("m")
    second.load(PoolSnapshot([KEYS[1]], version=second.version()))
    assert {second.pick("m").id for _ in range(3)} == {2}, "the removed key is never handed out"
    assert first.pick("m").id in {1, 2}, "the announcing worker is up to date"


def test_no_usable_key_waits_for_keys_already_tried(workers):
    first, _ = workers
    first.rate_limited(1, "m", retry_after=3)
    first.rate_limited(2, "m", retry_after=8)
    with pytest.raises(NoUsableKey) as raised:
        first.pick("m", exclude={1, 2})
    assert 2 < raised.value.retry_after <= 3 and not raised.value.resting


def test_redis_back_after_an_outage_gets_the_local_view(private_redis):
    client = connect(private_redis.url, 0.2)
    guard = RedisGuard(client.ping, retry_seconds=0.1)
    rotator = SharedKeyRotator(client, prefix="vault-test:pool:", guard=guard)
    rotator.load(PoolSnapshot(list(KEYS)))
    private_redis.stop()
    read_at = time.time()
    rotator.rate_limited(1, "m", retry_after=60)  # recorded locally (and in the database) while Redis is down
    rotator.rejected(2)
    assert rotator.pick("other").id == 1 and not guard.healthy
    private_redis.start()
    deadline = time.monotonic() + 5
    while not rotator.needs_reload():
        rotator.pick("other")  # calls answer locally; a probe runs aside
        assert time.monotonic() < deadline
        time.sleep(0.02)
    rotator.load(PoolSnapshot(list(KEYS), disabled_until={2: INDEFINITELY}, cooldowns={(1, "m"): time.time() + 60},
                              read_at=read_at))
    assert not rotator.needs_reload()
    other = SharedKeyRotator(connect(private_redis.url, 0.2), prefix="vault-test:pool:")
    other.load(PoolSnapshot(list(KEYS), version=other.version()))
    with pytest.raises(NoUsableKey) as raised:
        other.pick("m")
    assert 55 < raised.value.retry_after <= 60, "the cooldown recorded during the outage is shared again"
