"""The Redis circuit breaker: an unhealthy Redis costs one short timeout, then nothing until it is back."""

import time

import limits
import pytest

from vault.pool.rotator import PoolKey, PoolSnapshot
from vault.pool.shared import SharedKeyRotator, connect
from vault.ratelimit import Limiter, LoginThrottle
from vault.redisguard import RedisGuard, redis_client

TIMEOUT = 0.2


def timed(action) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def wait_until(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_black_hole_costs_one_timeout_then_nothing(black_hole):
    client = redis_client(black_hole.url, TIMEOUT)
    guard = RedisGuard(client.ping, retry_seconds=60)
    first = timed(lambda: guard.call(lambda: client.get("x"), "fallback"))
    assert first < 2 * TIMEOUT, "one timeout, no retries"
    assert not guard.healthy
    answers = []
    assert timed(lambda: answers.extend(guard.call(lambda: client.get("x"), "fallback") for _ in range(200))) < 0.05
    assert answers == ["fallback"] * 200
    assert timed(lambda: guard.check()) < 0.01, "a readiness check while the breaker is open touches no socket"


def test_the_limiter_and_login_throttle_stay_fast_on_a_black_hole(black_hole):
    limiter = Limiter(black_hole.url, "vault-test:limits:", timeout=TIMEOUT)
    throttle = LoginThrottle(limiter, max_failures=2, window_seconds=60)

    def logins() -> None:
        for _ in range(5):
            throttle.retry_after("ada@example.com", "10.0.0.1")
            throttle.failed("ada@example.com", "10.0.0.1")
            limiter.hit(limits.RateLimitItemPerMinute(100), "key", "1")

    assert timed(logins) < 2 * TIMEOUT + 0.2
    assert throttle.retry_after("ada@example.com", "10.0.0.1") is not None, "counted locally meanwhile"
    assert not limiter.ping()


def test_the_rotator_stays_fast_on_a_black_hole(black_hole):
    rotator = SharedKeyRotator(connect(black_hole.url, TIMEOUT), prefix="vault-test:pool:")
    rotator.load(PoolSnapshot([PoolKey(n, f"secret-{n}", f"k{n}") for n in (1, 2)]))
    picks = []
    assert timed(lambda: picks.extend(rotator.pick("m").id for _ in range(100))) < 0.1
    assert picks[:4] == [1, 2, 1, 2], "round-robin from local state"


def test_the_breaker_closes_when_redis_is_back_and_says_so(private_redis):
    client = redis_client(private_redis.url, TIMEOUT)
    recovered = []
    guard = RedisGuard(client.ping, retry_seconds=0.2)
    guard.on_recover(lambda: recovered.append(True))
    assert guard.call(lambda: client.set("x", "1")) is True
    private_redis.stop()
    assert guard.call(lambda: client.get("x"), "local") == "local" and not guard.healthy
    private_redis.start()
    assert guard.call(lambda: client.get("x"), "local") == "local", "answers at once; the probe runs aside"
    assert wait_until(lambda: guard.call(lambda: client.ping(), False) is True)
    assert guard.healthy and recovered == [True]


def test_a_command_error_is_not_an_outage(private_redis):
    client = redis_client(private_redis.url, TIMEOUT)
    guard = RedisGuard(client.ping)
    client.set("text", "not a number")
    assert guard.call(lambda: client.incr("text"), "fallback") == "fallback"
    assert guard.healthy


@pytest.mark.parametrize("timeout", [TIMEOUT])
def test_probes_are_spaced_out(black_hole, timeout):
    pings = []
    client = redis_client(black_hole.url, timeout)

    def ping():
        pings.append(time.monotonic())
        return client.ping()

    guard = RedisGuard(ping, retry_seconds=0.3)
    guard.call(lambda: client.get("x"))
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        guard.call(lambda: client.get("x"))
        time.sleep(0.01)
    assert 1 <= len(pings) <= 3, "at most one probe per retry interval, however many calls"
