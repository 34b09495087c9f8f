"""The accounts JSON API: registration, tokens, the caller, and ending sessions."""

from datetime import timedelta

import jwt
import pytest

from tests.conftest import DEFAULT_PASSWORD, TEST_SECRET_KEY
from vault.clock import utcnow
from vault.extensions import db
from vault.models import User
from vault.security import issue_access_token


def register(client, **body):
    return client.post("/auth/users/", json=body)


def test_register_creates_user_with_default_balance(client):
    response = register(client, email="Ada@Example.com", password="long enough")
    assert response.status_code == 201
    body = response.get_json()
    assert body["email"] == "ada@example.com"
    assert body["balance"] == 1.0
    assert body["is_admin"] is False and body["is_active"] is True
    assert "password" not in str(body) and "hash" not in str(body)


def test_register_ignores_privileged_fields(client):
    response = register(client, email="eve@example.com", password="long enough",
                        is_admin=True, balance=1000, is_active=False, id=99)
    assert response.status_code == 201
    user = db.session.scalar(db.select(User).filter_by(email="eve@example.com"))
    assert (user.is_admin, user.balance_nano, user.is_active) == (False, 10**9, True)
    assert user.id != 99


def test_register_hashes_password_with_argon2id(client):
    register(client, email="ada@example.com", password="long enough")
    user = db.session.scalar(db.select(User))
    assert user.password_hash.startswith("$argon2id$")
    assert "m=19456,t=2,p=1" in user.password_hash
    assert "long enough" not in user.password_hash


def test_duplicate_email_is_a_conflict_whatever_the_case(client, db_snapshot):
    register(client, email="ada@example.com", password="long enough")
    before = db_snapshot()
    response = register(client, email="ADA@example.COM", password="another one")
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "conflict"
    assert db_snapshot() == before


BAD_REGISTRATIONS = [
    pytest.param(b'{"email": "a@example.com", ', 400, None, id="malformed-json"),
    pytest.param(b'["a@example.com", "password"]', 400, None, id="json-list"),
    pytest.param(b'"just a string"', 400, None, id="json-string"),
    pytest.param(b"", 400, None, id="empty-body"),
    pytest.param(b'{"password": "long enough"}', 400, "email", id="missing-email"),
    pytest.param(b'{"email": "a@example.com"}', 400, "password", id="missing-password"),
    pytest.param(b'{"email": 12, "password": "long enough"}', 400, "email", id="email-not-string"),
    pytest.param(b'{"email": "a@example.com", "password": 12345678}', 400, "password", id="password-number"),
    pytest.param(b'{"email": "not-an-email", "password": "long enough"}', 400, "email", id="not-an-email"),
    pytest.param(b'{"email": "a@example.com", "password": "short"}', 400, "password", id="short-password"),
    pytest.param(b'{"email": null, "password": null}', 400, "email", id="nulls"),
    pytest.param(b"\xff\xfe\x00garbage", 400, None, id="not-utf8"),
]


@pytest.mark.parametrize(("raw", "status", "field"), BAD_REGISTRATIONS)
def test_bad_registration_is_a_clear_4xx_and_changes_nothing(client, db_snapshot, raw, status, field):
    before = db_snapshot()
    response = client.post("/auth/users/", data=raw, content_type="application/json")
    assert response.status_code == status
    error = response.get_json()["error"]
    assert error["message"]
    if field:
        assert field in error["fields"]
    assert db_snapshot() == before


def test_huge_body_is_refused_with_413(client, db_snapshot):
    before = db_snapshot()
    body = b'{"email": "a@example.com", "password": "' + b"x" * 100_000 + b'"}'
    response = client.post("/auth/users/", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "payload_too_large"
    assert db_snapshot() == before


def token(client, **credentials):
    return client.post("/auth/token", json=credentials)


def test_token_from_json_and_from_oauth2_form(client, make_user):
    make_user(email="ada@example.com")
    as_json = token(client, email="ada@example.com", password=DEFAULT_PASSWORD)
    as_form = client.post("/auth/token", data={"username": "ADA@example.com", "password": DEFAULT_PASSWORD,
                                               "grant_type": "password"})
    for response in (as_json, as_form):
        assert response.status_code == 200
        body = response.get_json()
        assert body["token_type"] == "bearer" and body["expires_in"] == 3600
        assert response.headers["Cache-Control"] == "no-store"
        me = client.get("/auth/users/me", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert me.get_json()["email"] == "ada@example.com"


def test_token_claims_are_hs256_with_expiry_and_issued_at(client, make_user):
    make_user(email="ada@example.com")
    access = token(client, email="ada@example.com", password=DEFAULT_PASSWORD).get_json()["access_token"]
    assert jwt.get_unverified_header(access)["alg"] == "HS256"
    claims = jwt.decode(access, TEST_SECRET_KEY, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 3600


def test_wrong_password_and_unknown_email_fail_alike(client, make_user):
    make_user(email="ada@example.com")
    wrong = token(client, email="ada@example.com", password="not the password")
    unknown = token(client, email="nobody@example.com", password="not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_json() == unknown.get_json()
    assert wrong.headers["WWW-Authenticate"] == "Bearer"


def test_deactivated_user_gets_no_token(client, make_user):
    make_user(email="ada@example.com", is_active=False)
    response = token(client, email="ada@example.com", password=DEFAULT_PASSWORD)
    assert response.status_code == 403


@pytest.mark.parametrize(("kwargs", "status"), [
    ({"data": {"username": "ada@example.com"}}, 400),
    ({"data": {"username": "ada@example.com", "password": "x", "grant_type": "client_credentials"}}, 400),
    ({"json": {"email": "ada@example.com", "password": ["list"]}}, 400),
    ({"json": {"email": "ada@example.com"}}, 400),
    ({"data": b"{not json", "content_type": "application/json"}, 400),
])
def test_bad_token_requests(client, make_user, db_snapshot, kwargs, status):
    make_user(email="ada@example.com")
    before = db_snapshot()
    response = client.post("/auth/token", **kwargs)
    assert response.status_code == status
    assert response.get_json()["error"]["message"]
    assert db_snapshot() == before


def forged_tokens(user: User) -> dict[str, str]:
    now = utcnow()
    claims = {"sub": str(user.id), "ver": user.session_version, "typ": "access", "iat": now,
              "exp": now + timedelta(minutes=5)}
    good = jwt.encode(claims, TEST_SECRET_KEY, algorithm="HS256")
    return {
        "expired": issue_access_token(user.id, user.session_version, TEST_SECRET_KEY, 60,
                                      now=now - timedelta(hours=1)),
        "tampered": good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
        "other-secret": jwt.encode(claims, "another-secret-" + "y" * 32, algorithm="HS256"),
        "alg-none": jwt.encode(claims, None, algorithm="none"),
        "hs512": jwt.encode(claims, TEST_SECRET_KEY, algorithm="HS512"),
        "no-exp": jwt.encode({k: v for k, v in claims.items() if k != "exp"}, TEST_SECRET_KEY, algorithm="HS256"),
        "wrong-type": jwt.encode(claims | {"typ": "refresh"}, TEST_SECRET_KEY, algorithm="HS256"),
        "garbage": "not.a.jwt",
    }


@pytest.mark.parametrize("kind", ["expired", "tampered", "other-secret", "alg-none", "hs512", "no-exp",
                                  "wrong-type", "garbage"])
def test_invalid_tokens_are_refused(client, make_user, kind):
    user = make_user()
    response = client.get("/auth/users/me", headers={"Authorization": f"Bearer {forged_tokens(user)[kind]}"})
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthenticated"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Basic YTpi"}, {"Authorization": "Bearer "}])
def test_me_requires_authentication(client, headers):
    response = client.get("/auth/users/me", headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"]["message"]


def test_me_shows_balance_and_totals(client, make_user, auth_headers):
    user = make_user(balance="2.50")
    body = client.get("/auth/users/me", headers=auth_headers(user)).get_json()
    assert body["balance"] == 2.5
    assert {"request_count", "total_tokens", "spend", "created_at"} <= body.keys()


def login_session(client, user: User) -> None:
    """Log `user` in as a browser would have (Flask-Login's session keys)."""
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = True


def test_browser_session_is_accepted(client, make_user):
    user = make_user(email="ada@example.com")
    login_session(client, user)
    assert client.get("/auth/users/me").get_json()["email"] == "ada@example.com"


def test_logout_everywhere_ends_tokens_and_sessions(app, client, make_user, auth_headers):
    user = make_user()
    headers = auth_headers(user)
    browser = app.test_client()
    login_session(browser, user)
    assert client.post("/auth/logout", headers=headers).status_code == 204
    assert client.get("/auth/users/me", headers=headers).status_code == 401
    assert browser.get("/auth/users/me").status_code == 401


def test_password_change_ends_every_session_and_token(app, client, make_user, auth_headers):
    user = make_user(email="ada@example.com")
    headers = auth_headers(user)
    browser = app.test_client()
    login_session(browser, user)
    response = client.post("/auth/users/me/password", headers=headers,
                           json={"current_password": DEFAULT_PASSWORD, "new_password": "a new passphrase"})
    assert response.status_code == 204
    assert client.get("/auth/users/me", headers=headers).status_code == 401
    assert browser.get("/auth/users/me").status_code == 401
    assert token(client, email="ada@example.com", password=DEFAULT_PASSWORD).status_code == 401
    assert token(client, email="ada@example.com", password="a new passphrase").status_code == 200


def test_password_change_needs_the_current_password(client, make_user, auth_headers, db_snapshot):
    user = make_user()
    headers = auth_headers(user)
    before = db_snapshot()
    for body in ({"current_password": "wrong password", "new_password": "a new passphrase"},
                 {"current_password": DEFAULT_PASSWORD, "new_password": "short"},
                 {"current_password": DEFAULT_PASSWORD}):
        response = client.post("/auth/users/me/password", headers=headers, json=body)
        assert response.status_code in (400, 401)
    assert db_snapshot() == before


def test_deactivation_ends_every_session_and_token(app, client, make_user, auth_headers):
    from vault.accounts import set_user_active

    user = make_user()
    headers = auth_headers(user)
    browser = app.test_client()
    login_session(browser, user)
    set_user_active(db.session, user, False)
    db.session.commit()
    assert client.get("/auth/users/me", headers=headers).status_code == 401
    assert browser.get("/auth/users/me").status_code == 401
    set_user_active(db.session, user, True)
    db.session.commit()
    assert client.get("/auth/users/me", headers=headers).status_code == 401


def test_session_logout_post_needs_csrf(app, make_user):
    app.config["WTF_CSRF_ENABLED"] = True
    browser = app.test_client()
    login_session(browser, make_user())
    response = browser.post("/auth/logout")
    assert response.status_code == 400
    assert "CSRF" in response.get_json()["error"]["message"]


@pytest.mark.parametrize(("method", "path", "status"), [
    ("get", "/auth/token", 405),
    ("get", "/auth/users/", 405),
    ("get", "/auth/nothing-here", 404),
    ("put", "/auth/users/me", 405),
])
def test_unknown_routes_and_methods_answer_json(client, method, path, status):
    response = getattr(client, method)(path)
    assert response.status_code == status
    assert response.get_json()["error"]["message"]
