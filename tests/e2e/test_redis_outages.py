"""Redis is a cache: when it stalls or goes away the Vault serves from local state at full speed,
and when it is back what the database says is true again everywhere."""

import time
import uuid
from collections import Counter

import pytest
import redis
import requests

from tests.e2e.relay import TcpRelay
from tests.e2e.server import VaultServer
from tests.fake_gemini import faults

MODEL = "gemini-2.5-flash"
PROMPT = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
ADMIN = {"email": "root@example.com", "password": "admin password"}
FAST = {"VAULT_REDIS_TIMEOUT_SECONDS": "0.25", "VAULT_REDIS_RETRY_SECONDS": "0.5"}


def generate(base: str, key: str) -> requests.Response:
    return requests.post(f"{base}/v1beta/models/{MODEL}:generateContent", json=PROMPT,
                         headers={"x-goog-api-key": key}, timeout=30)


def log_in(base: str) -> requests.Response:
    return requests.post(f"{base}/auth/token", json=ADMIN, timeout=30)


def key_id(stack, secret: str) -> int:
    return next(key["id"] for key in stack.pool() if key["key"].endswith(secret[-4:]))


def set_state(base: str, stack, secret: str, state: str) -> None:
    requests.patch(f"{base}/admin/api/upstream-keys/{key_id(stack, secret)}", json={"state": state},
                   headers=stack.admin(), timeout=10).raise_for_status()


def busy_for(base: str, vault_key: str) -> float:
    """Seconds taken by three logins and five proxied calls, each checked."""
    started = time.monotonic()
    assert all(log_in(base).status_code == 200 for _ in range(3))
    assert all(generate(base, vault_key).status_code == 200 for _ in range(5))
    return time.monotonic() - started


def eventually(condition, timeout: float = 15.0, every: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True


def redis_is_back(base: str) -> bool:
    """Ask the instance (its readiness check also wakes its breaker's probe)."""
    return requests.get(f"{base}/readyz", timeout=10).json()["redis"] == "up"


def test_a_redis_that_never_answers_costs_nothing(own_stack, black_hole):
    stack = own_stack(key_count=2, REDIS_URL=black_hole.url, VAULT_RATE_LIMIT_RPM="100", **FAST)
    assert busy_for(stack.base_url, stack.vault_key) < 1.0
    ready = requests.get(f"{stack.base_url}/readyz", timeout=10)
    assert ready.status_code == 200 and ready.json()["redis"] == "down", "Redis is reported, not required"
    assert sorted(Counter(call.key for call in stack.fake.calls).values()) == [2, 3], "local round-robin"


@pytest.fixture
def relayed_redis(private_redis):
    relay = TcpRelay(("127.0.0.1", private_redis.port))
    yield relay, redis.Redis.from_url(private_redis.url)
    relay.cut()


def test_a_stalled_redis_is_skipped_then_the_truth_returns(own_stack, relayed_redis):
    relay, direct = relayed_redis
    prefix = f"vault-test-{uuid.uuid4().hex[:8]}:"
    stack = own_stack(key_count=3, backend="postgresql", REDIS_URL=relay.url, VAULT_REDIS_PREFIX=prefix,
                      VAULT_POOL_REFRESH_SECONDS="600", WEB_CONCURRENCY="2", **FAST)
    first, second, third = stack.upstream_keys
    set_state(stack.base_url, stack, third, "disabled")
    assert direct.exists(f"{prefix}pool:disabled:{key_id(stack, third)}")

    relay.stall()
    assert busy_for(stack.base_url, stack.vault_key) < 1.5  # each worker pays one 0.25s timeout at most
    set_state(stack.base_url, stack, third, "active")  # saved; the Redis write is lost in the stall
    stack.fake.enqueue(faults.quota_exceeded("60s"), key=first)
    while not stack.fake.requests_for(first):
        assert generate(stack.base_url, stack.vault_key).status_code == 200

    relay.restore()
    assert eventually(lambda: redis_is_back(stack.base_url))
    cooling = f"{prefix}pool:cool:{key_id(stack, first)}:{MODEL}"

    def converged() -> bool:
        generate(stack.base_url, stack.vault_key)  # a pick re-reads the pool once Redis is back
        return not direct.exists(f"{prefix}pool:disabled:{key_id(stack, third)}") and direct.pttl(cooling) > 0

    assert eventually(converged), "the stale disable is cleared, the cooldown recorded meanwhile is shared"
    stack.fake.reset()
    assert all(generate(stack.base_url, stack.vault_key).status_code == 200 for _ in range(6))
    assert Counter(call.key for call in stack.fake.calls) == {second: 3, third: 3}


def test_redis_restarted_empty_gets_the_state_back(own_stack, private_redis):
    prefix = f"vault-test-{uuid.uuid4().hex[:8]}:"
    stack = own_stack(key_count=3, backend="postgresql", REDIS_URL=private_redis.url, VAULT_REDIS_PREFIX=prefix,
                      VAULT_POOL_REFRESH_SECONDS="600", WEB_CONCURRENCY="1", **FAST)
    other = VaultServer(stack.environ).start()  # another host: hears of changes only through Redis
    try:
        first, second, third = stack.upstream_keys
        assert generate(other.base_url, stack.vault_key).status_code == 200

        private_redis.stop()
        for base in (stack.base_url, other.base_url):
            assert busy_for(base, stack.vault_key) < 1.0
        stack.fake.enqueue(faults.quota_exceeded("60s"), key=first)
        while not stack.fake.requests_for(first):
            assert generate(stack.base_url, stack.vault_key).status_code == 200
        set_state(stack.base_url, stack, third, "disabled")

        private_redis.start()  # empty
        for base in (stack.base_url, other.base_url):
            assert eventually(lambda base=base: redis_is_back(base))
        direct = redis.Redis.from_url(private_redis.url)

        def shared_again() -> bool:
            generate(stack.base_url, stack.vault_key)
            return direct.exists(f"{prefix}pool:disabled:{key_id(stack, third)}") == 1

        assert eventually(shared_again)
        stack.fake.reset()
        assert all(generate(other.base_url, stack.vault_key).status_code == 200 for _ in range(4))
        assert {call.key for call in stack.fake.calls} == {second}, "the other host skips the cooling and disabled keys"
    finally:
        other.stop()
