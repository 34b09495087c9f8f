"""The Vault key JSON API: create, list and revoke one's own keys."""

import hashlib
import re

import pytest

from tests.auth.test_api import login_session
from vault.accounts import find_usable_api_key
from vault.extensions import db
from vault.models import ApiKey


def test_create_shows_the_full_key_once_and_stores_only_its_hash(client, make_user, auth_headers):
    user = make_user()
    response = client.post("/api-keys/", json={"name": "laptop"}, headers=auth_headers(user))
    assert response.status_code == 201
    body = response.get_json()
    assert re.fullmatch(r"gv-[A-Za-z0-9_-]{43}", body["key"])
    assert body["prefix"] == body["key"][:11] and body["name"] == "laptop"
    assert {"id", "created_at"} <= body.keys()
    record = db.session.get(ApiKey, body["id"])
    assert record.key_hash == hashlib.sha256(body["key"].encode()).hexdigest()
    listed = client.get("/api-keys/", headers=auth_headers(user)).get_json()
    assert body["key"] not in str(listed)
    assert listed[0]["prefix"] == body["prefix"]
    assert {"request_count", "total_tokens", "spend", "last_used_at"} <= listed[0].keys()


def test_create_without_body_or_name(client, make_user, auth_headers):
    user = make_user()
    assert client.post("/api-keys/", headers=auth_headers(user)).status_code == 201
    assert client.post("/api-keys/", json={}, headers=auth_headers(user)).get_json()["name"] == ""
    assert client.post("/api-keys/", json={"name": None}, headers=auth_headers(user)).status_code == 201


def test_list_shows_only_the_callers_keys(client, make_user, make_api_key, auth_headers):
    ada, bob = make_user(), make_user()
    make_api_key(ada, "ada's")
    make_api_key(bob, "bob's")
    names = [key["name"] for key in client.get("/api-keys/", headers=auth_headers(ada)).get_json()]
    assert names == ["ada's"]


def test_revoke_stops_the_key_at_once(client, make_user, make_api_key, auth_headers):
    user = make_user()
    new_key = make_api_key(user)
    assert find_usable_api_key(db.session, new_key.plaintext) is not None
    response = client.delete(f"/api-keys/{new_key.record.id}", headers=auth_headers(user))
    assert response.status_code == 204
    assert find_usable_api_key(db.session, new_key.plaintext) is None
    listed = client.get("/api-keys/", headers=auth_headers(user)).get_json()
    assert listed[0]["is_active"] is False and listed[0]["revoked_at"]
    assert client.delete(f"/api-keys/{new_key.record.id}", headers=auth_headers(user)).status_code == 204


def test_unknown_keys_are_not_usable(app, make_user):
    assert find_usable_api_key(db.session, "gv-" + "a" * 43) is None


def test_someone_elses_key_is_not_found(client, make_user, make_api_key, auth_headers, db_snapshot):
    ada, eve = make_user(), make_user()
    ada_key = make_api_key(ada)
    before = db_snapshot()
    for key_id in (ada_key.record.id, 999_999):
        response = client.delete(f"/api-keys/{key_id}", headers=auth_headers(eve))
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "not_found"
    assert client.delete("/api-keys/not-a-number", headers=auth_headers(eve)).status_code == 404
    assert db_snapshot() == before


@pytest.mark.parametrize(("raw", "field"), [
    (b'{"name": 5}', "name"),
    (b'{"name": ["a"]}', "name"),
    (b'{"name": "' + b"n" * 101 + b'"}', "name"),
    (b'{"name": ', None),
    (b"[]", None),
])
def test_bad_key_requests_change_nothing(client, make_user, auth_headers, db_snapshot, raw, field):
    user = make_user()
    before = db_snapshot()
    response = client.post("/api-keys/", data=raw, content_type="application/json", headers=auth_headers(user))
    assert response.status_code == 400
    if field:
        assert field in response.get_json()["error"]["fields"]
    assert db_snapshot() == before


@pytest.mark.parametrize(("method", "path"), [("get", "/api-keys/"), ("post", "/api-keys/"),
                                              ("delete", "/api-keys/1")])
def test_keys_need_authentication(client, db_snapshot, method, path):
    before = db_snapshot()
    response = getattr(client, method)(path)
    assert response.status_code == 401
    assert db_snapshot() == before


def test_session_callers_need_a_csrf_token_to_change_keys(app, make_user, db_snapshot):
    app.config["WTF_CSRF_ENABLED"] = True
    browser = app.test_client()
    login_session(browser, make_user())
    assert browser.get("/api-keys/").status_code == 200
    before = db_snapshot()
    refused = browser.post("/api-keys/", json={"name": "x"})
    assert refused.status_code == 400 and "CSRF" in refused.get_json()["error"]["message"]
    assert db_snapshot() == before
    csrf_token = browser.get("/auth/csrf-token").get_json()["csrf_token"]
    accepted = browser.post("/api-keys/", json={"name": "x"}, headers={"X-CSRFToken": csrf_token})
    assert accepted.status_code == 201
