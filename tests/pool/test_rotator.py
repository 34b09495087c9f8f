"""The key rotator on its own: round-robin, cooldowns, the breaker, disabling, and concurrency."""

import threading
from collections import Counter

import gevent
import pytest

from vault.pool.rotator import (
    ALL_MODELS,
    INDEFINITELY,
    KeyRotator,
    NoUsableKey,
    PoolKey,
    PoolSnapshot,
    RotatorPolicy,
)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


POLICY = RotatorPolicy(cooldown_base=2, cooldown_max=10, max_failures=3, disable_seconds=60,
                       breaker_failures=3, breaker_seconds=20)


def rotator_with(count=3, clock=None, policy=POLICY, **snapshot):
    rotator = KeyRotator(policy, clock or Clock())
    rotator.load(PoolSnapshot([PoolKey(n, f"secret-{n}", f"k{n}") for n in range(1, count + 1)], **snapshot))
    return rotator


def picks(rotator, count, model="m"):
    return [rotator.pick(model).id for _ in range(count)]


def test_round_robin():
    assert picks(rotator_with(3), 7) == [1, 2, 3, 1, 2, 3, 1]


def test_secrets_stay_out_of_repr():
    assert "secret" not in repr(PoolKey(1, "secret-value", "k1"))


def test_cooling_is_per_model_and_ends_by_itself():
    clock = Clock()
    rotator = rotator_with(3, clock)
    assert rotator.rate_limited(2, "m", retry_after=30) == clock.now + 30
    assert set(picks(rotator, 6)) == {1, 3}
    assert 2 in picks(rotator, 3, model="other")
    clock.now += 30.5
    assert 2 in picks(rotator, 3)


def test_all_cooling_says_when_the_first_is_back():
    clock = Clock()
    rotator = rotator_with(2, clock)
    rotator.rate_limited(1, "m", retry_after=20)
    rotator.rate_limited(2, "m", retry_after=5)
    with pytest.raises(NoUsableKey) as raised:
        rotator.pick("m")
    assert raised.value.retry_after == pytest.approx(5)


def test_exponential_backoff_is_capped_and_reset_by_success():
    clock = Clock()
    rotator = rotator_with(1, clock)
    ends = [rotator.rate_limited(1, "m") - clock.now for _ in range(5)]
    assert ends == [2, 4, 8, 10, 10]
    rotator.succeeded(1, "m")
    clock.now += 100
    assert rotator.rate_limited(1, "m") - clock.now == 2


def test_daily_reset_wins():
    rotator = rotator_with(1)
    assert rotator.rate_limited(1, "m", retry_after=5, until=5000.0) == 5000.0


def test_failures_disable_for_a_while_and_success_resets_the_count():
    clock = Clock()
    rotator = rotator_with(2, clock)
    assert rotator.failed(1) == (1, None)
    rotator.succeeded(1, "m")
    assert rotator.failed(1) == (1, None)
    assert rotator.failed(1) == (2, None)
    failures, until = rotator.failed(1)
    assert failures == 3 and until == clock.now + 60
    assert set(picks(rotator, 4)) == {2}
    clock.now += 61
    assert set(picks(rotator, 4)) == {1, 2}


def test_the_breaker_rests_a_failing_key_for_every_model_then_lets_it_back():
    clock = Clock()
    rotator = rotator_with(2, clock)
    assert rotator.faltered(1) == (1, None)
    assert rotator.faltered(1) == (2, None)
    assert rotator.faltered(1) == (3, clock.now + 20)
    assert rotator.cooldowns() == {(1, ALL_MODELS): clock.now + 20}
    assert set(picks(rotator, 4)) == {2}
    assert set(picks(rotator, 4, model="other")) == {2}
    clock.now += 20.5
    assert set(picks(rotator, 4)) == {1, 2}
    assert rotator.faltered(1) == (1, None), "the count starts over after a rest"


def test_a_success_ends_the_strike_streak():
    rotator = rotator_with(2)
    rotator.faltered(1)
    rotator.faltered(1)
    rotator.succeeded(1, "m")
    assert rotator.faltered(1) == (1, None)
    assert rotator.faltered(1) == (2, None)


def test_strikes_do_not_count_toward_a_disable_nor_failures_toward_the_breaker():
    rotator = rotator_with(2)
    rotator.failed(1)
    rotator.failed(1)
    assert rotator.faltered(1) == (1, None)
    assert rotator.failed(1)[1] is not None
    assert rotator.faltered(2) == (1, None)


def test_a_breaker_of_zero_is_off():
    rotator = rotator_with(1, policy=RotatorPolicy(breaker_failures=0))
    assert all(rotator.faltered(1)[1] is None for _ in range(10))
    assert rotator.pick("m").id == 1


def test_all_resting_says_so_and_when_the_first_is_back():
    clock = Clock()
    rotator = rotator_with(2, clock)
    for _ in range(3):
        rotator.faltered(1)
    rotator.rate_limited(2, "m", retry_after=5)
    with pytest.raises(NoUsableKey) as raised:
        rotator.pick("m")
    assert raised.value.resting and raised.value.retry_after == pytest.approx(5)
    rotator.rate_limited(2, "m", retry_after=50)
    with pytest.raises(NoUsableKey) as raised:
        rotator.pick("m")
    assert raised.value.retry_after == pytest.approx(20)


def test_only_cooling_is_not_resting():
    rotator = rotator_with(1)
    rotator.rate_limited(1, "m", retry_after=5)
    with pytest.raises(NoUsableKey) as raised:
        rotator.pick("m")
    assert not raised.value.resting


def test_a_loaded_rest_is_honoured_and_an_admin_enable_ends_it():
    rotator = rotator_with(2, cooldowns={(1, ALL_MODELS): 10**12})
    assert set(picks(rotator, 4)) == {2}
    rotator.faltered(1)
    rotator.enable(1)
    assert set(picks(rotator, 4)) == {1, 2}
    assert rotator.faltered(1) == (1, None)


def test_rejected_keys_stay_out_until_enabled():
    clock = Clock()
    rotator = rotator_with(2, clock)
    rotator.rejected(1)
    clock.now += 10**9
    assert set(picks(rotator, 4)) == {2}
    rotator.enable(1)
    assert set(picks(rotator, 4)) == {1, 2}


def test_loaded_state_is_honoured():
    rotator = rotator_with(3, disabled_until={1: INDEFINITELY}, cooldowns={(2, "m"): 10**12})
    assert set(picks(rotator, 3)) == {3}
    rotator.rate_limited(3, "m", retry_after=10**9)
    with pytest.raises(NoUsableKey) as raised:
        rotator.pick("m")
    assert raised.value.retry_after == POLICY.retry_after_max, "capped"


def test_no_keys_at_all():
    with pytest.raises(NoUsableKey) as raised:
        rotator_with(0).pick("m")
    assert raised.value.retry_after is None


def test_exclude_skips_keys_already_tried():
    rotator = rotator_with(3)
    assert rotator.pick("m", exclude={1, 2}).id == 3


def test_even_spread_under_real_threads():
    rotator = rotator_with(4)
    rotator.rate_limited(4, "m", retry_after=10**6)
    counts, lock = Counter(), threading.Lock()

    def worker():
        mine = Counter(rotator.pick("m").id for _ in range(300))
        with lock:
            counts.update(mine)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counts == {1: 1600, 2: 1600, 3: 1600}


def test_even_spread_under_greenlets():
    rotator = rotator_with(3)
    rotator.rejected(2)
    rotator.load(PoolSnapshot([PoolKey(n, "s", "k") for n in (1, 2, 3)], disabled_until={2: INDEFINITELY}))

    def worker():
        found = []
        for _ in range(100):
            found.append(rotator.pick("m").id)
            gevent.sleep(0)
        return found

    greenlets = [gevent.spawn(worker) for _ in range(30)]
    gevent.joinall(greenlets, raise_error=True)
    counts = Counter(key for greenlet in greenlets for key in greenlet.value)
    assert counts == {1: 1500, 3: 1500}


# When no key can serve: the wait is until the soonest key of the whole pool can.

def test_keys_already_tried_count_toward_the_wait():
    clock = Clock()
    rotator = rotator_with(3, clock)
    rotator.rate_limited(1, "m", retry_after=3)
    rotator.rate_limited(2, "m", retry_after=10)
    rotator.rate_limited(3, "m", until=clock.now + 80_000)  # a per-day quota
    with pytest.raises(NoUsableKey) as raised:
        rotator.pick("m", exclude={1, 2})
    assert raised.value.retry_after == pytest.approx(3) and not raised.value.resting


def test_a_key_disabled_for_a_while_counts_one_disabled_until_an_admin_acts_does_not():
    clock = Clock()
    rotator = rotator_with(3, clock, disabled_until={1: clock.now + 40, 2: INDEFINITELY})
    rotator.rate_limited(3, "m", retry_after=120)
    with pytest.raises(NoUsableKey) as raised:
        rotator.pick("m")
    assert raised.value.retry_after == pytest.approx(40) and not raised.value.resting, "the usable key only cools"
    rotator.rejected(3)
    with pytest.raises(NoUsableKey) as raised:
        rotator.pick("m")
    assert raised.value.retry_after == pytest.approx(40) and raised.value.resting, "only a disabled key is left"
    rotator.rejected(1)
    with pytest.raises(NoUsableKey) as raised:
        rotator.pick("m")
    assert raised.value.retry_after is None


def test_a_rest_and_a_cooldown_of_one_key_add_up():
    clock = Clock()
    rotator = rotator_with(1, clock)
    rotator.rate_limited(1, "m", retry_after=50)
    for _ in range(3):
        rotator.faltered(1)
    with pytest.raises(NoUsableKey) as raised:
        rotator.pick("m")
    assert raised.value.retry_after == pytest.approx(50) and raised.value.resting
    with pytest.raises(NoUsableKey) as raised:
        rotator.pick("other")
    assert raised.value.retry_after == pytest.approx(20)


# A refresh never undoes what this worker recorded after the snapshot was read.

def test_a_refresh_keeps_what_was_recorded_since_it_read():
    clock = Clock()
    rotator = rotator_with(2, clock)
    read_at = clock.now
    clock.now += 0.5
    rotator.rate_limited(1, "m", retry_after=30)
    rotator.rejected(2)
    rotator.load(PoolSnapshot([PoolKey(n, "s", "k") for n in (1, 2)], read_at=read_at))
    with pytest.raises(NoUsableKey) as raised:
        rotator.pick("m")
    assert raised.value.retry_after == pytest.approx(30)
    clock.now += 10
    rotator.load(PoolSnapshot([PoolKey(n, "s", "k") for n in (1, 2)], read_at=clock.now))
    assert picks(rotator, 2) == [1, 2], "a later snapshot is the truth again"


def test_a_refresh_drops_a_deleted_keys_state():
    clock = Clock()
    rotator = rotator_with(2, clock)
    rotator.rate_limited(2, "m", retry_after=30)
    rotator.load(PoolSnapshot([PoolKey(1, "s", "k")], read_at=clock.now - 1))
    rotator.load(PoolSnapshot([PoolKey(n, "s", "k") for n in (1, 2)], read_at=clock.now - 1))
    assert picks(rotator, 2) == [1, 2], "re-added, it starts clean"
