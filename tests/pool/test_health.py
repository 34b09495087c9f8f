"""PoolHealth on a real database: what each verdict changes in the pool, and what it must not."""

import time

import pytest

from vault import pool
from vault.extensions import db
from vault.models import UpstreamKey, UpstreamKeyState
from vault.pool.classify import Classification, Verdict
from vault.pool.health import PoolHealth
from vault.pool.rotator import ALL_MODELS, KeyRotator, NoUsableKey, RotatorPolicy
from vault.runtime import runtime

MODEL = "gemini-2.5-flash"
POLICY = RotatorPolicy(max_failures=3, disable_seconds=600, breaker_failures=3, breaker_seconds=20)
SERVER_ERROR = Classification(Verdict.TRANSIENT, "500 INTERNAL", 500, strike=True)
OUR_BUG = Classification(Verdict.TRANSIENT, "401 UNAUTHENTICATED: the upstream did not accept our credentials", 401)
CLIENT_ERROR = Classification(Verdict.CLIENT_ERROR, "403 PERMISSION_DENIED", 403)
REDIRECT = Classification(Verdict.REDIRECTED, "302 redirect from the upstream (not followed)", 302)
NO_SERVICE = Classification(Verdict.KEY_FAILURE, "400 FAILED_PRECONDITION", 400)
REJECTED = Classification(Verdict.KEY_REJECTED, "403 API_KEY_SERVICE_BLOCKED", 403)
OK = Classification(Verdict.OK, "ok", 200)


class Clock:
    """Wall-clock time that a test can move forward (cooldowns are compared with real time too)."""

    def __init__(self):
        self.now = time.time()

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def health(app, clock):
    """A PoolHealth over two stored keys, on its own rotator and clock."""
    vault = runtime()
    pool.add_upstream_keys(db.session, ["AIza-first-key-0001", "AIza-second-key-0002"], vault.secret_box)
    db.session.commit()
    return PoolHealth(KeyRotator(POLICY, clock), vault.session_factory, vault.secret_box, refresh_seconds=0,
                      clock=clock)


def stored(key_id: int) -> UpstreamKey:
    db.session.expire_all()
    return db.session.get(UpstreamKey, key_id)


def first_key(health):
    return health.pick(MODEL, set())


def test_client_errors_and_redirects_change_nothing_at_all(health, db_snapshot):
    key = first_key(health)
    health.record(key, MODEL, SERVER_ERROR)
    health.record(key, MODEL, NO_SERVICE)
    before = db_snapshot()
    for outcome in (CLIENT_ERROR, REDIRECT) * 3:
        health.record(key, MODEL, outcome)
    assert db_snapshot() == before


def test_client_errors_do_not_end_a_failure_streak(health):
    key = first_key(health)
    health.record(key, MODEL, NO_SERVICE)
    health.record(key, MODEL, NO_SERVICE)
    health.record(key, MODEL, CLIENT_ERROR)
    assert stored(key.id).consecutive_failures == 2
    health.record(key, MODEL, NO_SERVICE)
    row = stored(key.id)
    assert row.state is UpstreamKeyState.DISABLED and row.disabled_until is not None
    assert row.consecutive_failures == 3


def test_client_errors_do_not_end_a_strike_streak(health):
    key = first_key(health)
    health.record(key, MODEL, SERVER_ERROR)
    health.record(key, MODEL, SERVER_ERROR)
    health.record(key, MODEL, CLIENT_ERROR)
    health.record(key, MODEL, SERVER_ERROR)
    assert [cooldown.model for cooldown in stored(key.id).cooldowns] == [ALL_MODELS]


def test_a_success_ends_the_streaks(health):
    key = first_key(health)
    health.record(key, MODEL, NO_SERVICE)
    health.record(key, MODEL, SERVER_ERROR)
    health.record(key, MODEL, SERVER_ERROR)
    health.record(key, MODEL, OK)
    assert stored(key.id).consecutive_failures == 0
    health.record(key, MODEL, SERVER_ERROR)
    assert stored(key.id).cooldowns == []


def test_the_breaker_sets_a_key_aside_visibly_then_it_comes_back(health, clock, client, make_user, auth_headers):
    key = first_key(health)
    for _ in range(3):
        health.record(key, MODEL, SERVER_ERROR)
    row = stored(key.id)
    assert row.state is UpstreamKeyState.ACTIVE and row.failure_count == 3
    assert row.last_error == "500 INTERNAL"

    listing = client.get("/admin/api/upstream-keys", headers=auth_headers(make_user(is_admin=True))).get_json()[
        "upstream_keys"]
    shown = next(entry for entry in listing if entry["id"] == key.id)
    assert shown["state"] == "active"
    [rest] = shown["cooldowns"]
    assert rest["model"] == ALL_MODELS and rest["reason"].startswith("circuit breaker: 3 upstream failures")

    assert all(health.pick(model, set()).id != key.id for model in (MODEL, "gemini-2.5-pro", "") for _ in range(2))
    other = health.pick(MODEL, {key.id})
    health.record(other, MODEL, Classification(Verdict.RATE_LIMITED, "429", 429, retry_after=50))
    with pytest.raises(NoUsableKey) as raised:
        health.pick(MODEL, {other.id})  # the other key cools for 50s, the resting one is back first
    assert raised.value.resting and raised.value.retry_after == pytest.approx(20)

    clock.now += 21
    assert key.id in {health.pick(MODEL, set()).id for _ in range(2)}
    health.refresh(force=True)
    assert stored(key.id).cooldowns == [], "an ended rest is cleared from the table"


def test_our_own_credential_bug_never_counts_against_a_key(health):
    key = first_key(health)
    for _ in range(5):
        health.record(key, MODEL, OUR_BUG)
    row = stored(key.id)
    assert row.state is UpstreamKeyState.ACTIVE and row.cooldowns == []
    assert row.failure_count == 0 and row.last_error.startswith("401")


def test_a_rejected_key_is_disabled_until_an_admin_acts(health, clock):
    key = first_key(health)
    health.record(key, MODEL, REJECTED)
    row = stored(key.id)
    assert row.state is UpstreamKeyState.DISABLED and row.disabled_until is None
    assert row.disabled_reason == "rejected by the upstream: 403 API_KEY_SERVICE_BLOCKED"
    clock.now += 10**6
    assert all(health.pick(MODEL, set()).id != key.id for _ in range(4))


def test_a_refresh_does_not_lose_a_cooldown_recorded_while_it_read(health, clock, monkeypatch):
    """Without Redis: a 429 recorded between the refresh's read and its apply must survive it."""
    from vault.pool import health as module

    key = first_key(health)
    read = module.read_snapshot

    def slow_read(session, box, now):
        snapshot = read(session, box, now)
        clock.now += 0.1
        health.record(key, MODEL, Classification(Verdict.RATE_LIMITED, "429", 429, retry_after=30))
        return snapshot

    monkeypatch.setattr(module, "read_snapshot", slow_read)
    health.refresh(force=True)
    monkeypatch.setattr(module, "read_snapshot", read)
    assert all(health.rotator.pick(MODEL).id != key.id for _ in range(4)), "the cooling key is not retried"


def test_retry_after_is_the_soonest_key_for_the_model(health, clock):
    first = first_key(health)
    second = health.pick(MODEL, {first.id})
    health.record(first, MODEL, Classification(Verdict.RATE_LIMITED, "429", 429, retry_after=3))
    assert health.retry_after(MODEL) == 0.0, "the other key serves now"
    health.record(second, MODEL, Classification(Verdict.RATE_LIMITED, "429", 429, daily_quota=True))
    assert health.retry_after(MODEL) == pytest.approx(3)
    assert health.retry_after("gemini-2.5-pro") == 0.0
