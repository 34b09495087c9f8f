"""Deleting an upstream key is soft: out of the pool everywhere, its history and in-flight requests intact."""

import time
import uuid

import pytest

from tests.billing.books import assert_books_balance, records, settle, settlement, take_hold
from tests.databases import TEST_REDIS_URL
from vault import pool
from vault.billing import balances
from vault.bootstrap import bootstrap
from vault.extensions import db
from vault.models import UpstreamKey, UpstreamKeyState, User
from vault.pool.classify import Classification, Verdict
from vault.pool.health import PoolHealth, read_snapshot
from vault.pool.rotator import KeyRotator, RotatorPolicy
from vault.pool.shared import SharedKeyRotator, connect
from vault.runtime import runtime

FIRST, SECOND = "AIzaSy-first-pooled-key-0001", "AIzaSy-second-pooled-key-0002"


@pytest.fixture
def admin(make_user, auth_headers):
    return auth_headers(make_user(email="root@example.com", is_admin=True))


@pytest.fixture
def key_ids(app):
    added = pool.add_upstream_keys(db.session, [FIRST, SECOND], runtime().secret_box)
    db.session.commit()
    return [result.key.id for result in added]


def stored(key_id: int) -> UpstreamKey:
    db.session.expire_all()
    return db.session.get(UpstreamKey, key_id)


def test_delete_hides_the_key_wipes_its_secret_and_keeps_the_row(client, admin, key_ids):
    first, second = key_ids
    fingerprint = stored(first).fingerprint
    assert client.delete(f"/admin/api/upstream-keys/{first}", headers=admin).status_code == 204
    row = stored(first)
    assert (row.state, row.secret_encrypted, row.fingerprint) == (UpstreamKeyState.DELETED, "", fingerprint)
    assert row.deleted_at is not None
    listed = client.get("/admin/api/upstream-keys", headers=admin).get_json()["upstream_keys"]
    assert [key["id"] for key in listed] == [second]
    listed = client.get("/admin/api/upstream-keys?include_deleted=1", headers=admin).get_json()["upstream_keys"]
    assert [(key["id"], key["state"], key["deleted_at"] is not None) for key in listed] == [
        (first, "deleted", True), (second, "active", False)]
    for method in ("delete", "patch"):
        assert getattr(client, method)(f"/admin/api/upstream-keys/{first}", json={"state": "active"},
                                       headers=admin).status_code == 404


def test_a_deleted_key_leaves_the_rotation_the_counts_and_readiness(client, admin, key_ids):
    first, second = key_ids
    client.delete(f"/admin/api/upstream-keys/{first}", headers=admin)
    snapshot = read_snapshot(db.session, runtime().secret_box, time.time())
    assert [key.id for key in snapshot.keys] == [second]
    assert pool.count_by_state(pool.list_upstream_keys(db.session, include_deleted=True), time.time()) == {
        "active": 1, "cooling": 0, "disabled": 0}
    assert client.get("/readyz").get_json()["upstream_keys"] == "up"
    client.delete(f"/admin/api/upstream-keys/{second}", headers=admin)
    assert client.get("/readyz").get_json()["upstream_keys"] == "down"
    assert 'vault_upstream_keys{state="active"} 0' in client.get("/metrics").get_data(as_text=True)


def test_adding_a_deleted_key_again_revives_its_row(client, admin, key_ids):
    first, _ = key_ids
    client.delete(f"/admin/api/upstream-keys/{first}", headers=admin)
    added = client.post("/admin/api/upstream-keys", json={"keys": [FIRST]}, headers=admin).get_json()["upstream_keys"]
    assert [(key["id"], key["state"], key["created"]) for key in added] == [(first, "active", True)]
    assert runtime().secret_box.decrypt(stored(first).secret_encrypted) == FIRST
    assert db.session.query(UpstreamKey).count() == 2


def test_the_environment_does_not_bring_a_deleted_key_back(app, client, admin, key_ids):
    first, _ = key_ids
    client.delete(f"/admin/api/upstream-keys/{first}", headers=admin)
    app.config["GEMINI_API_KEYS"] = (FIRST, SECOND)
    bootstrap(app)
    assert stored(first).state is UpstreamKeyState.DELETED


def test_the_cli_lists_deleted_keys_only_when_asked(runner, client, admin, key_ids):
    first, _ = key_ids
    client.delete(f"/admin/api/upstream-keys/{first}", headers=admin)
    masked = stored(first).masked
    assert masked not in runner.invoke(args=["upstream", "list"]).output
    listed = runner.invoke(args=["upstream", "list", "--include-deleted"]).output
    assert masked in listed and "deleted" in listed


def test_a_request_on_a_deleted_key_still_settles_with_the_key_id(client, admin, key_ids, make_user):
    first, _ = key_ids
    user = make_user(balance="1.00")
    settlement_id, held = take_hold(user.id, 7000)
    client.delete(f"/admin/api/upstream-keys/{first}", headers=admin)
    assert settle(settlement(user.id, settlement_id=settlement_id, hold=held, cost=1234, upstream_key_id=first))
    (record,) = records(user.id)
    assert record.upstream_key_id == first and record.cost_nano == 1234
    assert stored(first).request_count == 1
    db.session.expire_all()
    assert db.session.get(User, user.id).balance_nano == 10**9 - 1234


def test_what_a_request_on_a_deleted_key_met_does_not_revive_it(client, admin, key_ids):
    first, _ = key_ids
    vault = runtime()
    health = PoolHealth(KeyRotator(RotatorPolicy()), vault.session_factory, vault.secret_box, refresh_seconds=0)
    key = health.pick("gemini-2.5-flash", set())
    client.delete(f"/admin/api/upstream-keys/{key.id}", headers=admin)
    health.record(key, "gemini-2.5-flash", Classification(Verdict.KEY_REJECTED, "400 API_KEY_INVALID", 400))
    health.record(key, "gemini-2.5-flash", Classification(Verdict.RATE_LIMITED, "429", 429, retry_after=30))
    row = stored(key.id)
    assert row.state is UpstreamKeyState.DELETED and row.cooldowns == []
    assert key.id not in [k.id for k in read_snapshot(db.session, vault.secret_box, time.time()).keys]


def test_deleting_keys_never_touches_the_books(client, admin, key_ids, make_user):
    user_id = make_user(balance="1.00").id
    balances.record_signup_credit(db.session, db.session.get(User, user_id))
    db.session.commit()
    ids = [take_hold(user_id, 1000)[0] for _ in range(2)]
    client.delete(f"/admin/api/upstream-keys/{key_ids[0]}", headers=admin)
    for settlement_id in ids:
        settle(settlement(user_id, settlement_id=settlement_id, hold=1000, cost=10, upstream_key_id=key_ids[0]))
    assert len(records(user_id)) == 2 and uuid.UUID(records(user_id)[0].settlement_id)
    assert_books_balance(user_id)


@pytest.mark.skipif(not TEST_REDIS_URL, reason="TEST_REDIS_URL is not set")
def test_a_revived_key_is_cleared_of_the_shared_state_it_was_deleted_in(client, admin, key_ids):
    vault = runtime()
    rotator = SharedKeyRotator(connect(TEST_REDIS_URL), RotatorPolicy(), prefix=f"vault-test-{uuid.uuid4().hex[:8]}:")
    vault.health = PoolHealth(rotator, vault.session_factory, vault.secret_box, refresh_seconds=0)
    key = vault.health.pick("gemini-2.5-flash", set())
    vault.health.record(key, "gemini-2.5-flash", Classification(Verdict.KEY_REJECTED, "400 API_KEY_INVALID", 400))
    assert client.delete(f"/admin/api/upstream-keys/{key.id}", headers=admin).status_code == 204
    client.post("/admin/api/upstream-keys", json={"keys": [key.secret]}, headers=admin)
    assert key.id in {vault.health.pick("gemini-2.5-flash", set()).id for _ in range(4)}
