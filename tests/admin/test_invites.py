"""Invites for admins: the JSON API and the page; codes are shown once and stored hashed."""

import re
from datetime import timedelta

import pytest
from jsonschema import Draft202012Validator

from tests.test_pages import csrf_token, log_in
from vault.clock import isoformat, utcnow
from vault.extensions import db
from vault.models import Invite
from vault.openapi import build_openapi
from vault.security import hash_vault_key


def matches_the_document(app, body, schema_name: str) -> None:
    document = build_openapi(app)
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": document["components"]}
    Draft202012Validator(schema).validate(body)
    assert set(body) == set(document["components"]["schemas"][schema_name]["properties"])


def test_create_shows_the_code_once_and_stores_its_hash(app, client, admin, admin_headers):
    expires = utcnow() + timedelta(days=7)
    response = client.post("/admin/api/invites", json={"note": "for Ada", "expires_at": isoformat(expires)},
                           headers=admin_headers)
    assert response.status_code == 201
    body = response.get_json()
    matches_the_document(app, body, "NewInvite")
    assert re.fullmatch(r"gvi-[A-Za-z0-9_-]{32}", body["code"]) and body["code"].startswith(body["prefix"])
    assert body["url"] == f"http://localhost/register?invite={body['code']}"
    assert (body["note"], body["state"], body["created_by"], body["used_by"]) == ("for Ada", "unused", admin.id, None)
    row = db.session.get(Invite, body["id"])
    assert row.code_hash == hash_vault_key(body["code"]) and body["code"] not in repr(row.__dict__)
    listed = client.get("/admin/api/invites", headers=admin_headers)
    assert listed.status_code == 200 and body["code"] not in listed.get_data(as_text=True)
    for entry in listed.get_json():
        matches_the_document(app, entry, "Invite")


def test_create_without_a_body_never_expires(client, admin_headers):
    response = client.post("/admin/api/invites", headers=admin_headers)
    assert response.status_code == 201 and response.get_json()["expires_at"] is None


def test_the_link_uses_the_public_url(app, client, admin_headers):
    app.config["VAULT_PUBLIC_URL"] = "https://vault.example.com/"
    body = client.post("/admin/api/invites", json={}, headers=admin_headers).get_json()
    assert body["url"] == f"https://vault.example.com/register?invite={body['code']}"


@pytest.mark.parametrize(("body", "field"), [
    ({"note": "n" * 256}, "note"),
    ({"note": 5}, "note"),
    ({"expires_at": "tomorrow"}, "expires_at"),
    ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
    ({"expires_at": [2030]}, "expires_at"),
])
def test_bad_invites_are_refused(client, admin_headers, db_snapshot, body, field):
    before = db_snapshot()
    response = client.post("/admin/api/invites", json=body, headers=admin_headers)
    assert response.status_code == 400 and field in response.get_json()["error"]["fields"]
    assert db_snapshot() == before


def test_revoke_deletes_an_unused_invite_and_keeps_used_ones(app, client, admin_headers):
    unused = client.post("/admin/api/invites", json={}, headers=admin_headers).get_json()
    used = client.post("/admin/api/invites", json={}, headers=admin_headers).get_json()
    app.config["VAULT_REGISTRATION"] = "invite"
    assert client.post("/auth/users/", json={"email": "ada@example.com", "password": "long enough",
                                             "invite_code": used["code"]}).status_code == 201
    assert client.delete(f"/admin/api/invites/{unused['id']}", headers=admin_headers).status_code == 204
    assert client.post("/auth/users/", json={"email": "bob@example.com", "password": "long enough",
                                             "invite_code": unused["code"]}).status_code == 403
    kept = client.delete(f"/admin/api/invites/{used['id']}", headers=admin_headers)
    assert kept.status_code == 409 and kept.get_json()["error"]["code"] == "conflict"
    assert client.delete(f"/admin/api/invites/{unused['id']}", headers=admin_headers).status_code == 404
    listed = client.get("/admin/api/invites", headers=admin_headers).get_json()
    assert [(entry["id"], entry["state"]) for entry in listed] == [(used["id"], "used")]
    assert listed[0]["used_by"] is not None and listed[0]["used_at"] is not None


@pytest.mark.parametrize(("method", "path"), [("get", "/admin/api/invites"), ("post", "/admin/api/invites"),
                                              ("delete", "/admin/api/invites/1")])
def test_invites_are_for_admins_only(client, make_user, auth_headers, db_snapshot, method, path):
    headers = auth_headers(make_user())
    before = db_snapshot()
    assert getattr(client, method)(path, json={}).status_code == 401
    response = getattr(client, method)(path, json={}, headers=headers)
    assert response.status_code == 403
    assert db_snapshot() == before


# The page


def test_the_invites_page_creates_lists_and_revokes(app, admin, db_snapshot):
    browser = app.test_client()
    log_in(browser, "root@example.com")
    page = browser.get("/admin/invites")
    assert page.status_code == 200 and b"No invites yet" in page.data
    assert b'href="/admin/invites"' in page.data  # in the admin navigation
    token = csrf_token(browser, "/admin/invites")
    before = db_snapshot()
    refused = browser.post("/admin/invites", data={"note": "x", "expires_in_days": "0", "csrf_token": token})
    assert refused.status_code == 400 and db_snapshot() == before
    created = browser.post("/admin/invites", data={"note": "<b>Grace</b>", "expires_in_days": "7",
                                                   "csrf_token": token})
    assert created.status_code == 201
    html = created.get_data(as_text=True)
    code = re.search(r'data-testid="new-invite-code">(gvi-[A-Za-z0-9_-]+)<', html).group(1)
    assert f"/register?invite={code}" in html and "&lt;b&gt;Grace&lt;/b&gt;" in html and "<b>Grace" not in html
    invite = db.session.scalar(db.select(Invite))
    assert invite.code_hash == hash_vault_key(code)
    assert timedelta(days=6, hours=23) < invite.expires_at - invite.created_at <= timedelta(days=7, seconds=5)
    again = browser.get("/admin/invites").get_data(as_text=True)
    assert code not in again and invite.prefix in again and "unused" in again
    revoked = browser.post(f"/admin/invites/{invite.id}/revoke", data={"csrf_token": token}, follow_redirects=True)
    assert b"was revoked" in revoked.data
    assert db.session.scalar(db.select(db.func.count()).select_from(Invite)) == 0


def test_invite_page_posts_need_csrf_and_an_admin(app, admin, make_user, db_snapshot):
    browser = app.test_client()
    log_in(browser, "root@example.com")
    before = db_snapshot()
    for path in ("/admin/invites", "/admin/invites/1/revoke"):
        response = browser.post(path, data={"note": "x"})
        assert response.status_code == 400 and b"CSRF" in response.data
    make_user(email="ada@example.com")
    before = db_snapshot()
    other = app.test_client()
    log_in(other, "ada@example.com")
    assert other.get("/admin/invites").status_code == 403
    assert other.post("/admin/invites", data={"csrf_token": csrf_token(other, "/dashboard")}).status_code == 403
    assert db_snapshot() == before
