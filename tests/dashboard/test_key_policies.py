"""A Vault key's policy in the JSON API: every field round-trips, bad and unknown fields are 400,
someone else's key is 404, a revoked one 409, and no key gets more than its owner has (403 naming
the field), whether its owner or an admin asks. Standing shows the effective limits."""

from decimal import Decimal

import pytest

from vault.billing.money import usd_to_nano
from vault.extensions import db
from vault.models import ApiKey, User
from vault.runtime import runtime

GENERATE = "/v1beta/models/gemini-2.5-flash:generateContent"
PROMPT = {"contents": [{"role": "user", "parts": [{"text": "Say hi"}]}]}
EVERY_FIELD = {
    "expires_at": "2030-01-02T03:04:05Z", "allowed_models": ["gemini-2.5-flash*", "gemini-2.5-pro"],
    "spend_cap": 2.5, "spend_cap_period": "week", "rate_limit_rpm": 30, "rate_limit_tpm": 50_000,
    "max_concurrency": 3, "allowed_ips": ["10.0.0.0/8", "2001:db8::/32"],
}
CLEARED = dict.fromkeys(EVERY_FIELD)


def own_policy(body: dict) -> dict:
    return {name: body[name] for name in EVERY_FIELD}


def set_limits(user: User, **limits) -> None:
    """`User.limits` in stored form (`spend_cap` in USD here)."""
    if "spend_cap" in limits:
        limits["spend_cap_nano"] = usd_to_nano(str(limits.pop("spend_cap")))
    user.limits = limits
    db.session.commit()


@pytest.fixture
def owner(make_user, auth_headers):
    user = make_user()
    return user, auth_headers(user)


def test_every_field_round_trips_on_create_and_change(client, owner):
    user, headers = owner
    created = client.post("/api-keys/", json={"name": "ci"} | EVERY_FIELD, headers=headers)
    assert created.status_code == 201, created.get_json()
    assert own_policy(created.get_json()) == EVERY_FIELD
    key_id = created.get_json()["id"]
    (listed,) = client.get("/api-keys/", headers=headers).get_json()
    assert own_policy(listed) == EVERY_FIELD
    assert listed["effective"]["allowed_models"] == [EVERY_FIELD["allowed_models"]]
    assert listed["standing"] | {"period": None, "period_ends_at": None} == {
        "expired": False, "spend_cap": 2.5, "spend_cap_period": "week", "period": None, "period_ends_at": None,
        "spend_this_period": 0.0, "rate_limit_rpm": 30, "requests_this_minute": 0, "rate_limit_tpm": 50_000,
        "tokens_this_minute": 0, "max_concurrency": 3, "in_flight": 0, "timezone": "UTC"}
    assert listed["standing"]["period"].startswith("week:")

    kept = client.patch(f"/api-keys/{key_id}", json={"max_concurrency": 5}, headers=headers).get_json()
    assert own_policy(kept) == EVERY_FIELD | {"max_concurrency": 5}, "fields left out keep their value"
    cleared = client.patch(f"/api-keys/{key_id}", json=CLEARED, headers=headers)
    assert cleared.status_code == 200 and own_policy(cleared.get_json()) == CLEARED
    assert cleared.get_json()["effective"]["rate_limit_rpm"] is None, "no global default in the tests"


def test_inputs_are_normalised(client, owner):
    user, headers = owner
    body = client.post("/api-keys/", headers=headers, json={
        "allowed_models": ["models/gemini-2.5-flash", " gemini-2.5-flash ", "gemini-*"],
        "allowed_ips": ["10.1.2.3/8", "192.0.2.7"], "expires_at": "2030-01-02T05:04:05+02:00",
        "spend_cap": "0.000000001"}).get_json()
    assert body["allowed_models"] == ["gemini-2.5-flash", "gemini-*"]
    assert body["allowed_ips"] == ["10.0.0.0/8", "192.0.2.7/32"]
    assert body["expires_at"] == "2030-01-02T03:04:05Z" and body["spend_cap_period"] is None
    assert db.session.get(ApiKey, body["id"]).spend_cap_nano == 1


@pytest.mark.parametrize(("field", "value"), [
    ("expires_at", "next tuesday"), ("expires_at", 1893456000),
    ("allowed_models", "gemini-2.5-flash"), ("allowed_models", ["gemini 2.5"]), ("allowed_models", [5]),
    ("allowed_models", ["m"] * 101), ("allowed_models", ["x" * 129]),
    ("spend_cap", -1), ("spend_cap", "lots"), ("spend_cap", 10_000_000), ("spend_cap", "0.0000000001"),
    ("spend_cap_period", "year"), ("spend_cap_period", "Day"),
    ("rate_limit_rpm", -1), ("rate_limit_rpm", "60"), ("rate_limit_rpm", 1.5), ("rate_limit_rpm", True),
    ("rate_limit_tpm", 0), ("max_concurrency", 0), ("max_concurrency", 100_001),
    ("allowed_ips", ["300.1.1.1"]), ("allowed_ips", "10.0.0.0/8"), ("allowed_ips", ["10.0.0.0/33"]),
])
def test_bad_fields_are_400_naming_them_and_change_nothing(client, owner, make_api_key, db_snapshot, field, value):
    user, headers = owner
    key = make_api_key(user)
    before = db_snapshot()
    for method, path in (("post", "/api-keys/"), ("patch", f"/api-keys/{key.record.id}")):
        response = getattr(client, method)(path, json={field: value}, headers=headers)
        assert response.status_code == 400, (method, response.get_json())
        assert field in {name.split(".")[0] for name in response.get_json()["error"]["fields"]}
    assert db_snapshot() == before


@pytest.mark.parametrize("body", [{"rate_limit": 5}, {"spend_cap": 1, "spend_limit": 1}, {"name": "x"}, {"id": 7}])
def test_unknown_fields_are_refused(client, owner, make_api_key, db_snapshot, body):
    user, headers = owner
    key = make_api_key(user)
    before = db_snapshot()
    patched = client.patch(f"/api-keys/{key.record.id}", json=body, headers=headers)
    assert patched.status_code == 400 and patched.get_json()["error"]["fields"]
    if "name" not in body:  # a name is the one extra field a new key takes
        assert client.post("/api-keys/", json=body, headers=headers).status_code == 400
    assert db_snapshot() == before


def test_an_empty_patch_changes_nothing_and_a_non_object_is_refused(client, owner, make_api_key):
    user, headers = owner
    key = make_api_key(user)
    assert client.patch(f"/api-keys/{key.record.id}", json={}, headers=headers).status_code == 200
    for raw in (b"[]", b"", b'"x"'):
        response = client.patch(f"/api-keys/{key.record.id}", data=raw, content_type="application/json",
                                headers=headers)
        assert response.status_code == 400


def test_someone_elses_key_is_404_and_a_revoked_key_409(client, owner, make_user, make_api_key, auth_headers,
                                                         db_snapshot):
    user, headers = owner
    other_key = make_api_key(make_user())
    own_key = make_api_key(user)
    client.delete(f"/api-keys/{own_key.record.id}", headers=headers)
    before = db_snapshot()
    for key_id in (other_key.record.id, 999_999):
        response = client.patch(f"/api-keys/{key_id}", json={"rate_limit_rpm": 5}, headers=headers)
        assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"
    revoked = client.patch(f"/api-keys/{own_key.record.id}", json={"rate_limit_rpm": 5}, headers=headers)
    assert revoked.status_code == 409 and "revoked" in revoked.get_json()["error"]["message"]
    assert client.patch(f"/api-keys/{other_key.record.id}", json={"rate_limit_rpm": 5}).status_code == 401
    assert db_snapshot() == before


# (the user's limits, the key's fields, the field the refusal names)
ESCALATIONS = [
    ({"spend_cap": 5, "spend_cap_period": "day"}, {"spend_cap": 6, "spend_cap_period": "day"}, "spend_cap"),
    ({"spend_cap": 5, "spend_cap_period": "day"}, {"spend_cap": "5.000000001"}, "spend_cap"),
    ({"spend_cap": 5, "spend_cap_period": "day"}, {"spend_cap": 1, "spend_cap_period": "week"}, "spend_cap_period"),
    ({"spend_cap": 5, "spend_cap_period": "day"}, {"spend_cap": 1, "spend_cap_period": "month"}, "spend_cap_period"),
    ({"spend_cap": 5}, {"spend_cap": 1, "spend_cap_period": "day"}, "spend_cap_period"),
    ({"rate_limit_rpm": 60}, {"rate_limit_rpm": 0}, "rate_limit_rpm"),
    ({"rate_limit_rpm": 60}, {"rate_limit_rpm": 61}, "rate_limit_rpm"),
    ({"rate_limit_tpm": 1000}, {"rate_limit_tpm": 1001}, "rate_limit_tpm"),
    ({"max_concurrency": 2}, {"max_concurrency": 3}, "max_concurrency"),
    ({"allowed_models": ["gemini-2.5-*"]}, {"allowed_models": ["*"]}, "allowed_models"),
    ({"allowed_models": ["gemini-2.5-*"]}, {"allowed_models": ["gemini-3*"]}, "allowed_models"),
    ({"allowed_models": ["gemini-2.5-*"]}, {"allowed_models": ["gemini-2.5-flash", "gemini-2.?-pro"]},
     "allowed_models"),
    ({"allowed_models": ["gemini-2.5-flash"]}, {"allowed_models": ["gemini-2.5-flash*"]}, "allowed_models"),
    ({"allowed_ips": ["10.0.0.0/8"]}, {"allowed_ips": ["192.168.0.0/16"]}, "allowed_ips"),
    ({"allowed_ips": ["10.0.0.0/8"]}, {"allowed_ips": ["10.0.0.0/7"]}, "allowed_ips"),
    ({"allowed_ips": ["10.0.0.0/8"]}, {"allowed_ips": ["10.1.0.0/16", "::/0"]}, "allowed_ips"),
    ({"allowed_ips": ["10.0.0.0/8"]}, {"allowed_ips": ["::ffff:10.0.0.1"]}, "allowed_ips"),
]


@pytest.mark.parametrize(("limits", "fields", "named"), ESCALATIONS)
def test_an_owner_cannot_give_a_key_more_than_they_have(client, owner, make_api_key, db_snapshot, limits, fields,
                                                         named):
    user, headers = owner
    set_limits(user, **limits)
    key = make_api_key(user)
    before = db_snapshot()
    for method, path in (("post", "/api-keys/"), ("patch", f"/api-keys/{key.record.id}")):
        response = getattr(client, method)(path, json=fields, headers=headers)
        assert response.status_code == 403, (method, response.get_json())
        assert response.get_json()["error"]["message"].startswith(f"{named}: ")
    assert db_snapshot() == before


@pytest.mark.parametrize(("limits", "fields", "named"), ESCALATIONS)
def test_an_admin_cannot_either(client, owner, make_api_key, admin_headers, db_snapshot, limits, fields, named):
    user, _ = owner
    set_limits(user, **limits)
    key = make_api_key(user)
    before = db_snapshot()
    response = client.patch(f"/admin/api/api-keys/{key.record.id}", json=fields, headers=admin_headers)
    assert response.status_code == 403 and response.get_json()["error"]["message"].startswith(f"{named}: ")
    assert db_snapshot() == before


@pytest.mark.parametrize(("limits", "fields"), [
    ({"spend_cap": 5, "spend_cap_period": "day"}, {"spend_cap": 5, "spend_cap_period": "day"}),
    ({"spend_cap": 5, "spend_cap_period": "day"}, {"spend_cap": "0.5"}),  # over the key's life: never more
    ({"spend_cap": 5, "spend_cap_period": "day"}, {"rate_limit_rpm": 10}),
    ({"rate_limit_rpm": 60}, {"rate_limit_rpm": 60}),
    ({"rate_limit_rpm": 60, "rate_limit_tpm": 1000, "max_concurrency": 2},
     {"rate_limit_rpm": 1, "rate_limit_tpm": 1, "max_concurrency": 1}),
    ({"allowed_models": ["gemini-2.5-*"]}, {"allowed_models": ["gemini-2.5-flash", "gemini-2.5-pro*"]}),
    ({"allowed_ips": ["10.0.0.0/8", "2001:db8::/32"]}, {"allowed_ips": ["10.2.0.0/16", "10.0.0.1", "2001:db8:1::/48"]}),
    ({"visible_models": ["gemini-2.5-*"]}, {"allowed_models": ["*"]}),  # visibility is checked at the door
])
def test_within_the_owners_limits_is_fine(client, owner, make_api_key, limits, fields):
    user, headers = owner
    set_limits(user, **limits)
    key = make_api_key(user)
    assert client.patch(f"/api-keys/{key.record.id}", json=fields, headers=headers).status_code == 200
    assert client.post("/api-keys/", json=fields, headers=headers).status_code == 201


def test_the_global_default_is_an_owners_ceiling_but_not_an_admins(client, owner, make_api_key, admin_headers,
                                                                   monkeypatch):
    monkeypatch.setattr(runtime(), "default_rpm", 30)
    user, headers = owner
    key = make_api_key(user)
    for rpm in (0, 31):
        response = client.patch(f"/api-keys/{key.record.id}", json={"rate_limit_rpm": rpm}, headers=headers)
        assert response.status_code == 403 and "at most 30 requests" in response.get_json()["error"]["message"]
    assert client.post("/api-keys/", json={"rate_limit_rpm": 31}, headers=headers).status_code == 403
    assert client.patch(f"/api-keys/{key.record.id}", json={"rate_limit_rpm": 30}, headers=headers).status_code == 200
    (listed,) = client.get("/api-keys/", headers=headers).get_json()
    assert listed["rate_limit_rpm"] == 30
    lifted = client.patch(f"/admin/api/api-keys/{key.record.id}", json={"rate_limit_rpm": 500}, headers=admin_headers)
    assert lifted.status_code == 200 and lifted.get_json()["standing"]["rate_limit_rpm"] == 500
    unlimited = client.patch(f"/admin/api/api-keys/{key.record.id}", json={"rate_limit_rpm": 0}, headers=admin_headers)
    assert unlimited.get_json()["effective"]["rate_limit_rpm"] is None
    set_limits(user, rate_limit_rpm=100)  # an account's own ceiling replaces the default for its owner
    assert client.patch(f"/api-keys/{key.record.id}", json={"rate_limit_rpm": 100}, headers=headers).status_code == 200


def test_lowering_a_users_ceiling_lowers_the_effective_limits_shown(client, owner, make_api_key, admin_headers):
    user, headers = owner
    key = make_api_key(user)
    client.patch(f"/api-keys/{key.record.id}", headers=headers, json={
        "rate_limit_rpm": 100, "rate_limit_tpm": 10_000, "max_concurrency": 8, "spend_cap": 10,
        "spend_cap_period": "month"})
    changed = client.patch(f"/admin/api/users/{user.id}", headers=admin_headers, json={"limits": {
        "rate_limit_rpm": 50, "rate_limit_tpm": 2_000, "max_concurrency": 2, "spend_cap": 4,
        "spend_cap_period": "month", "allowed_models": ["gemini-2.5-*"], "visible_models": ["gemini-*"]}})
    assert changed.status_code == 200
    (listed,) = client.get("/api-keys/", headers=headers).get_json()
    assert listed["rate_limit_rpm"] == 100, "the key keeps its own setting"
    standing, effective = listed["standing"], listed["effective"]
    assert (standing["rate_limit_rpm"], standing["rate_limit_tpm"], standing["max_concurrency"],
            standing["spend_cap"]) == (50, 2_000, 2, 4.0)
    assert effective["allowed_models"] == [["gemini-2.5-*"]] and effective["visible_models"] == ["gemini-*"]
    refused = client.patch(f"/api-keys/{key.record.id}", json={"max_concurrency": 1}, headers=headers)
    assert refused.status_code == 403, "a change must bring every limit of the key within the new ceilings"
    client.patch(f"/admin/api/users/{user.id}", headers=admin_headers, json={"limits": None})
    (listed,) = client.get("/api-keys/", headers=headers).get_json()
    assert listed["standing"]["rate_limit_rpm"] == 100 and listed["effective"]["allowed_models"] == []


def test_standing_counts_this_minutes_requests_and_this_periods_spend(client, proxied_key, auth_headers):
    key = proxied_key("1.00")
    user = db.session.get(User, key.record.user_id)
    headers = auth_headers(user)
    client.patch(f"/api-keys/{key.record.id}", headers=headers,
                 json={"rate_limit_rpm": 10, "spend_cap": "0.5", "spend_cap_period": "day", "rate_limit_tpm": 10**6})
    for _ in range(2):
        response = client.post(GENERATE, json=PROMPT, headers={"x-goog-api-key": key.plaintext})
        assert response.status_code == 200
        response.close()
    (listed,) = client.get("/api-keys/", headers=headers).get_json()
    standing = listed["standing"]
    assert standing["requests_this_minute"] == 2 and standing["in_flight"] == 0
    assert standing["tokens_this_minute"] > 0
    assert 0 < Decimal(str(standing["spend_this_period"])) == Decimal(listed["spend_nano_usd"]) / 10**9


def test_admin_reads_and_clears_a_users_limits(client, owner, admin_headers, db_snapshot):
    user, headers = owner
    limits = {"allowed_models": ["gemini-2.5-*"], "visible_models": ["gemini-*"], "spend_cap": 5.0,
              "spend_cap_period": "day", "rate_limit_rpm": 60, "rate_limit_tpm": 1000, "max_concurrency": 2,
              "allowed_ips": ["10.0.0.0/8"]}
    changed = client.patch(f"/admin/api/users/{user.id}", json={"limits": limits}, headers=admin_headers)
    assert changed.status_code == 200 and changed.get_json()["limits"] == limits
    shown = client.get(f"/admin/api/users/{user.id}", headers=admin_headers).get_json()
    assert shown["limits"] == limits
    listed = client.get("/admin/api/users", headers=admin_headers).get_json()
    assert next(u for u in listed if u["id"] == user.id)["limits"] == limits
    assert client.get("/auth/users/me", headers=headers).get_json()["limits"] == limits, "the user sees them too"
    kept = client.patch(f"/admin/api/users/{user.id}", json={"limits": {"max_concurrency": None}},
                        headers=admin_headers).get_json()
    assert kept["limits"] == limits | {"max_concurrency": None}, "inside limits, left out keeps and null clears"
    client.patch(f"/admin/api/users/{user.id}", json={"limits": None}, headers=admin_headers)
    db.session.expire_all()
    assert db.session.get(User, user.id).limits is None
    before = db_snapshot()
    for bad in ({"limits": {"spend_cap": -1}}, {"limits": {"visible_models": ["a b"]}}, {"limits": []},
                {"limits": {"expires_at": "2030-01-01T00:00:00Z"}}):
        response = client.patch(f"/admin/api/users/{user.id}", json=bad, headers=admin_headers)
        assert response.status_code == 400 and next(iter(response.get_json()["error"]["fields"])).startswith("limits")
    assert db_snapshot() == before


def test_admin_changes_every_field_of_any_key(client, owner, make_api_key, admin_headers):
    user, _ = owner
    key = make_api_key(user)
    response = client.patch(f"/admin/api/api-keys/{key.record.id}", json=EVERY_FIELD, headers=admin_headers)
    assert response.status_code == 200 and own_policy(response.get_json()) == EVERY_FIELD
    shown = client.get(f"/admin/api/users/{user.id}", headers=admin_headers).get_json()
    assert own_policy(shown["api_keys"][0]) == EVERY_FIELD and shown["api_keys"][0]["standing"]["max_concurrency"] == 3
    assert client.patch("/admin/api/api-keys/999999", json={}, headers=admin_headers).status_code == 404
