"""The admin JSON API: users and balances, prices, the usage ledger; refused to everyone else."""

from datetime import UTC, datetime, timedelta

import pytest

from tests.billing.books import settlement
from vault.billing import ledger
from vault.extensions import db
from vault.models import BalanceAdjustment, ModelPrice
from vault.runtime import runtime

ADMIN_ROUTES = [("get", "/admin/api/users"), ("patch", "/admin/api/users/1"), ("get", "/admin/api/users/1"),
                ("get", "/admin/api/upstream-keys"), ("post", "/admin/api/upstream-keys"),
                ("get", "/admin/api/prices"), ("put", "/admin/api/prices/gemini-2.5-flash"),
                ("get", "/admin/api/usage"), ("get", "/admin/api/usage/summary")]


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
def test_admin_api_refuses_others(client, make_user, auth_headers, db_snapshot, method, path):
    before = db_snapshot()
    assert getattr(client, method)(path, json={}).status_code == 401
    user = make_user()
    before = db_snapshot()
    response = getattr(client, method)(path, json={}, headers=auth_headers(user))
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "forbidden"
    assert db_snapshot() == before


def test_admin_cannot_lock_themselves_out(client, make_user, auth_headers):
    admin = make_user(is_admin=True)
    for body in ({"is_active": False}, {"is_admin": False}):
        response = client.patch(f"/admin/api/users/{admin.id}", json=body, headers=auth_headers(admin))
        assert response.status_code == 403


@pytest.mark.parametrize(("body", "field"), [
    ({"balance": 5}, "body"),
    ({"balance": 1, "balance_delta": 1, "reason": "x"}, "body"),
    ({"balance": "lots", "reason": "x"}, "balance"),
    ({"balance_delta": True, "reason": "x"}, "balance_delta"),
    ({"balance": "1e400", "reason": "x"}, "balance"),
    ({"balance": "0.0000000001", "reason": "x"}, "balance"),
    ({"is_active": "yes"}, "is_active"),
    ({"reason": 5, "balance": 1}, "reason"),
])
def test_bad_user_patches_change_nothing(client, make_user, admin_headers, db_snapshot, body, field):
    user = make_user()
    before = db_snapshot()
    response = client.patch(f"/admin/api/users/{user.id}", json=body, headers=admin_headers)
    assert response.status_code == 400
    assert field in response.get_json()["error"]["fields"]
    assert db_snapshot() == before


def test_unknown_user_is_404(client, admin_headers):
    assert client.patch("/admin/api/users/9999", json={"is_active": False}, headers=admin_headers).status_code == 404


def test_balance_changes_are_recorded_with_who_and_why(client, make_user, admin_headers):
    user = make_user(balance="1.00")
    response = client.patch(f"/admin/api/users/{user.id}", json={"balance_delta": "-0.25", "reason": "refund"},
                            headers=admin_headers)
    assert response.get_json()["balance"] == 0.75
    detail = client.get(f"/admin/api/users/{user.id}", headers=admin_headers).get_json()
    assert detail["adjustments"][0]["amount"] == -0.25 and detail["adjustments"][0]["reason"] == "refund"
    assert db.session.scalar(db.select(BalanceAdjustment.admin_id)) is not None


def test_prices_crud(client, admin_headers, db_snapshot):
    body = {"input": 1.25, "output": "10", "cached_input": 0.125, "tier_threshold": 200000,
            "input_above": 2.5, "output_above": 15}
    created = client.put("/admin/api/prices/models/gemini-x", json=body, headers=admin_headers)
    assert created.status_code == 404  # a model name has no slash
    created = client.put("/admin/api/prices/gemini-x", json=body, headers=admin_headers)
    assert created.status_code == 200
    assert created.get_json()["input_above"] == 2.5 and created.get_json()["cached_input_above"] is None
    assert runtime().prices.lookup("gemini-x").rates_for(300_000).input == 2_500_000_000
    listed = client.get("/admin/api/prices", headers=admin_headers).get_json()
    assert [p["model"] for p in listed["prices"]] == ["gemini-x"] and listed["fallback"]["output"] == 10.0
    before = db_snapshot()
    for bad in ({"input": -1, "output": 1}, {"input": "x", "output": 1}, {"output": 1}, {"input": 1, "output": 1e9}):
        assert client.put("/admin/api/prices/gemini-x", json=bad, headers=admin_headers).status_code == 400
    assert db_snapshot() == before
    assert client.delete("/admin/api/prices/gemini-x", headers=admin_headers).status_code == 204
    assert client.get("/admin/api/prices/gemini-x", headers=admin_headers).status_code == 404
    assert db.session.query(ModelPrice).count() == 0


def test_usage_filters_pagination_and_summary(client, make_user, make_api_key, admin_headers):
    ada, bob = make_user(), make_user()
    ada_key = make_api_key(ada).record
    session = runtime().session_factory()
    day = datetime(2026, 11, 20, 12, tzinfo=UTC)
    for n in range(5):
        ledger.settle(session, settlement(ada.id, api_key_id=ada_key.id, started_at=day + timedelta(days=n % 2),
                                           cost=100, model="gemini-2.5-flash"))
    ledger.settle(session, settlement(bob.id, status=429, model="gemini-2.5-pro", started_at=day))
    session.close()
    page = client.get(f"/admin/api/usage?user_id={ada.id}&per_page=2&page=2", headers=admin_headers).get_json()
    assert page["total"] == 5 and len(page["items"]) == 2 and page["page"] == 2
    assert client.get("/admin/api/usage?status=429", headers=admin_headers).get_json()["total"] == 1
    assert client.get("/admin/api/usage?model=models/gemini-2.5-pro", headers=admin_headers).get_json()["total"] == 1
    since = client.get("/admin/api/usage?since=2026-11-21T00:00:00Z", headers=admin_headers).get_json()
    assert since["total"] == 2
    rows = client.get("/admin/api/usage/summary", headers=admin_headers).get_json()["rows"]
    assert {(r["day"], r["model"], r["requests"]) for r in rows} == {
        ("2026-11-20", "gemini-2.5-flash", 3), ("2026-11-20", "gemini-2.5-pro", 1),
        ("2026-11-21", "gemini-2.5-flash", 2)}


@pytest.mark.parametrize("query", ["user_id=abc", "since=yesterday", "per_page=0", "per_page=10000", "status=42",
                                   "page=-1"])
def test_bad_usage_queries_are_400(client, admin_headers, query):
    response = client.get(f"/admin/api/usage?{query}", headers=admin_headers)
    assert response.status_code == 400 and response.get_json()["error"]["fields"]


@pytest.mark.parametrize(("path", "method", "body"), [
    ("/admin/api/users/{user}", "patch", {"is_active": True, "proxy_url": "http://evil.example:8080"}),
    ("/admin/api/users/{user}", "patch", {"limits": {"rate_limit_rpm": 1, "max_rpm": 5}}),
    ("/admin/api/api-keys/{key}", "patch", {"rate_limit_rpm": 5, "max_rpm": 5}),
    ("/admin/api/upstream-keys/{upstream}", "patch", {"label": "x", "proxy": "socks5://127.0.0.1:1080"}),
    ("/admin/api/prices/gemini-2.5-flash", "put", {"input": "1.00", "output": "2.00", "per_image": "0.04"}),
])
def test_unknown_fields_of_a_patch_or_put_are_refused_and_nothing_changes(client, make_user, make_api_key,
                                                                         admin_headers, db_snapshot, path, method,
                                                                         body):
    from vault import pool

    user = make_user()
    key = make_api_key(user)
    upstream = pool.add_upstream_key(db.session, "AIza" + "U" * 35, runtime().secret_box)
    db.session.commit()
    target = path.format(user=user.id, key=key.record.id, upstream=upstream.key.id)
    before = db_snapshot()
    response = getattr(client, method)(target, json=body, headers=admin_headers)
    assert response.status_code == 400, response.get_json()
    unknown = next(name for name in body if name in ("proxy_url", "proxy", "limits", "max_rpm", "per_image"))
    assert unknown in {field.split(".")[0] for field in response.get_json()["error"]["fields"]}
    assert db_snapshot() == before
