"""Who may sign up: open, invite-only or closed registration, single-use invites, and the
per-address sign-up throttle, on the JSON API and the /register page."""

import threading
from datetime import timedelta

import pytest

from tests.test_pages import csrf_token
from vault import accounts
from vault.clock import utcnow
from vault.extensions import db
from vault.models import BalanceAdjustment, Invite, User

ACCOUNT = {"email": "ada@example.com", "password": "long enough"}


@pytest.fixture
def registration(app):
    """`registration("invite")`: switch the sign-up mode of the running app."""

    def switch(mode: str) -> None:
        app.config["VAULT_REGISTRATION"] = mode

    return switch


@pytest.fixture
def make_invite(app, make_user):
    """`make_invite(expires_in=…)`: a committed invite and its code."""
    admin = make_user(email="root@example.com", is_admin=True)

    def build(expires_in: timedelta | None = None, note: str = "") -> str:
        new = accounts.create_invite(db.session, admin, note, utcnow() + expires_in if expires_in else None)
        db.session.commit()
        return new.code

    return build


def users() -> list[str]:
    db.session.expire_all()
    return sorted(db.session.scalars(db.select(User.email)))


def register_page(browser, query: str = "", **form):
    token = csrf_token(browser, f"/register{query}")
    data = {"email": "ada@example.com", "password": "long enough", "confirm": "long enough"} | form
    return browser.post(f"/register{query}", data=data | {"csrf_token": token})


# Closed


def test_closed_registration_refuses_the_api(client, registration, db_snapshot):
    registration("closed")
    before = db_snapshot()
    response = client.post("/auth/users/", json=ACCOUNT)
    assert response.status_code == 403
    assert response.get_json()["error"]["message"] == accounts.SIGNUP_CLOSED
    assert db_snapshot() == before


def test_closed_registration_refuses_the_page_and_hides_the_links(app, client, registration, db_snapshot):
    registration("closed")
    before = db_snapshot()
    page = client.get("/register")
    assert page.status_code == 403 and b"Sign-up is closed" in page.data and b"<form" not in page.data
    posted = client.post("/register", data={"email": "ada@example.com", "password": "long enough",
                                            "confirm": "long enough", "csrf_token": csrf_token(client, "/login")})
    assert posted.status_code == 403
    assert db_snapshot() == before
    login = client.get("/login").get_data(as_text=True)
    assert 'href="/register"' not in login


@pytest.mark.parametrize(("mode", "link"), [("open", "New here?"), ("invite", "Have an invite?")])
def test_the_login_page_links_to_sign_up_when_it_is_possible(client, registration, mode, link):
    registration(mode)
    login = client.get("/login").get_data(as_text=True)
    assert link in login and 'href="/register"' in login


# Open (the default)


def test_open_registration_ignores_invite_codes(client, make_invite):
    code = make_invite()
    response = client.post("/auth/users/", json=ACCOUNT | {"invite_code": "not a code"})
    assert response.status_code == 201
    assert db.session.scalar(db.select(Invite.used_at).where(Invite.id.is_not(None))) is None
    assert code


def test_open_registration_page_has_no_invite_field(client):
    assert b"invite_code" not in client.get("/register").data


# Invite


def test_invite_registration_redeems_the_code_once(client, registration, make_invite):
    registration("invite")
    code = make_invite(note="for Ada")
    created = client.post("/auth/users/", json=ACCOUNT | {"invite_code": f"  {code} "})
    assert created.status_code == 201
    invite = db.session.scalar(db.select(Invite))
    assert invite.used_by == created.get_json()["id"] and invite.used_at is not None
    again = client.post("/auth/users/", json={"email": "eve@example.com", "password": "long enough",
                                              "invite_code": code})
    assert again.status_code == 403 and again.get_json()["error"]["fields"]["invite_code"]
    assert users() == ["ada@example.com", "root@example.com"]


@pytest.mark.parametrize("code", [None, "", "   ", "gvi-not-a-real-code", "expired", "used"])
def test_invite_registration_refuses_bad_codes_and_changes_nothing(client, registration, make_invite, db_snapshot,
                                                                   code):
    registration("invite")
    if code == "expired":
        code = make_invite(expires_in=timedelta(seconds=-1))
    elif code == "used":
        code = make_invite()
        assert client.post("/auth/users/", json={"email": "first@example.com", "password": "long enough",
                                                 "invite_code": code}).status_code == 201
    before = db_snapshot()
    body = ACCOUNT | ({} if code is None else {"invite_code": code})
    response = client.post("/auth/users/", json=body)
    assert response.status_code == 403
    error = response.get_json()["error"]
    assert error["code"] == "forbidden" and "invite" in error["message"].lower() and "invite_code" in error["fields"]
    assert db_snapshot() == before


@pytest.mark.parametrize(("body", "field"), [
    ({"invite_code": 12345}, "invite_code"),
    ({"invite_code": "x" * 201}, "invite_code"),
    ({"email": "not-an-email"}, "email"),
])
def test_invite_registration_validates_the_body_first(client, registration, make_invite, db_snapshot, body, field):
    registration("invite")
    code = make_invite()
    before = db_snapshot()
    response = client.post("/auth/users/", json=ACCOUNT | {"invite_code": code} | body)
    assert response.status_code == 400 and field in response.get_json()["error"]["fields"]
    assert db_snapshot() == before


def test_a_taken_email_does_not_use_up_the_invite(client, registration, make_invite, make_user):
    make_user(email="ada@example.com")
    registration("invite")
    code = make_invite()
    assert client.post("/auth/users/", json=ACCOUNT | {"invite_code": code}).status_code == 409
    assert db.session.scalar(db.select(Invite.used_at)) is None
    assert client.post("/auth/users/", json={"email": "bob@example.com", "password": "long enough",
                                             "invite_code": code}).status_code == 201


def test_an_invite_link_fills_in_the_register_page(app, registration, make_invite):
    registration("invite")
    code = make_invite()
    browser = app.test_client()
    page = browser.get(f"/register?invite={code}").get_data(as_text=True)
    assert "Sign-up is by invitation" in page and f'value="{code}"' in page
    response = register_page(browser, f"?invite={code}", invite_code=code)
    assert response.status_code == 302 and response.headers["Location"] == "/dashboard"
    assert db.session.scalar(db.select(BalanceAdjustment.kind)) == "signup"
    assert db.session.scalar(db.select(Invite.used_by)) == db.session.scalar(
        db.select(User.id).where(User.email == "ada@example.com"))


@pytest.mark.parametrize("code", ["", "gvi-wrong"])
def test_the_register_page_shows_invite_errors_next_to_the_field(app, registration, make_invite, db_snapshot, code):
    registration("invite")
    make_invite()
    browser = app.test_client()
    before = db_snapshot()
    response = register_page(browser, invite_code=code)
    assert response.status_code == 403 and b'aria-invalid="true"' in response.data
    assert b'id="invite_code-error"' in response.data
    assert db_snapshot() == before


def test_concurrent_sign_ups_with_one_invite_create_one_account(app, registration, make_invite):
    registration("invite")
    code = make_invite()
    app.config["VAULT_SIGNUP_PER_HOUR"] = 0
    statuses, lock, start = [], threading.Lock(), threading.Barrier(20)

    def sign_up(n: int) -> None:
        client = app.test_client()
        start.wait()
        response = client.post("/auth/users/", json={"email": f"racer{n}@example.com", "password": "long enough",
                                                     "invite_code": code})
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=sign_up, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201] + [403] * 19
    racers = [email for email in users() if email.startswith("racer")]
    assert len(racers) == 1
    invite = db.session.scalar(db.select(Invite))
    assert db.session.get(User, invite.used_by).email == racers[0]
    assert db.session.scalar(db.select(db.func.count()).select_from(BalanceAdjustment)) == 1


# The sign-up throttle


def test_sign_ups_per_address_are_limited(app, client, db_snapshot):
    app.config["VAULT_SIGNUP_PER_HOUR"] = 3
    for n in range(3):
        assert client.post("/auth/users/", json={"email": f"farm{n}@example.com", "password": "long enough"},
                           environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 201
    before = db_snapshot()
    refused = client.post("/auth/users/", json={"email": "farm9@example.com", "password": "long enough"},
                          environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert refused.get_json()["error"]["code"] == "rate_limited"
    assert db_snapshot() == before
    elsewhere = client.post("/auth/users/", json={"email": "other@example.com", "password": "long enough"},
                            environ_base={"REMOTE_ADDR": "198.51.100.1"})
    assert elsewhere.status_code == 201


def test_invalid_bodies_do_not_count_but_conflicts_do(app, client):
    app.config["VAULT_SIGNUP_PER_HOUR"] = 2
    for _ in range(5):
        assert client.post("/auth/users/", json={"email": "nope"}).status_code == 400
    assert client.post("/auth/users/", json=ACCOUNT).status_code == 201
    assert client.post("/auth/users/", json=ACCOUNT).status_code == 409
    assert client.post("/auth/users/", json={"email": "bob@example.com", "password": "long enough"}).status_code \
        == 429


def test_the_register_page_is_throttled_too(app, db_snapshot):
    app.config["VAULT_SIGNUP_PER_HOUR"] = 1
    first, second = app.test_client(), app.test_client()
    assert register_page(first).status_code == 302
    before = db_snapshot()
    refused = register_page(second, email="bob@example.com")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert b"Too many sign-ups" in refused.data
    assert db_snapshot() == before


def test_zero_means_no_sign_up_limit(app, client):
    app.config["VAULT_SIGNUP_PER_HOUR"] = 0
    for n in range(12):
        assert client.post("/auth/users/", json={"email": f"u{n}@example.com", "password": "long enough"}) \
            .status_code == 201


@pytest.mark.parametrize(("value", "ok"), [("open", True), ("INVITE", True), (" closed ", True), ("maybe", False)])
def test_the_registration_setting_is_checked(value, ok):
    from vault.config import ConfigError, settings_from_env

    if ok:
        assert settings_from_env({"VAULT_REGISTRATION": value})["VAULT_REGISTRATION"] == value.strip().lower()
    else:
        with pytest.raises(ConfigError, match="VAULT_REGISTRATION"):
            settings_from_env({"VAULT_REGISTRATION": value})


def test_defaults_keep_todays_behaviour():
    from vault.config import settings_from_env

    settings = settings_from_env({})
    assert settings["VAULT_REGISTRATION"] == "open" and settings["VAULT_SIGNUP_PER_HOUR"] == 10
    assert settings["FORWARDED_ALLOW_IPS"] == ("127.0.0.1",) and settings["VAULT_PROXY_HOPS"] == 1
