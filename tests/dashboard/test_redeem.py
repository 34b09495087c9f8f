"""Redeeming a top-up code: `POST /api/redeem` (token or session) and the dashboard form.

Unknown, used and expired codes are 404, 409 and 410 for every caller; every attempt counts
against `VAULT_REDEEM_PER_HOUR`; each redemption is in the ledger.
"""

from datetime import timedelta

import pytest

from tests.admin.test_codes import matches_the_document
from tests.test_pages import csrf_token, log_in
from vault.billing import balances, redemption
from vault.billing.money import usd_to_nano
from vault.clock import utcnow
from vault.extensions import db
from vault.models import BalanceAdjustment, User


@pytest.fixture
def code(app):
    """`code(amount="5", expires_at=None)`: a fresh plaintext code."""

    def build(amount: str = "5", expires_at=None) -> str:
        minted = redemption.mint(db.session, None, usd_to_nano(amount), 1, expires_at, "", utcnow())
        db.session.commit()
        return minted.codes[0]

    return build


@pytest.fixture
def member(make_user):
    """A user whose starting credit of $1 is in the ledger."""
    user = make_user(email="ada@example.com", balance="1.00")
    balances.record_signup_credit(db.session, user)
    db.session.commit()
    return user


def test_redeem_with_a_token_returns_the_new_balance(app, client, member, auth_headers, code):
    plaintext = code("5")
    response = client.post("/api/redeem", json={"code": plaintext}, headers=auth_headers(member))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    matches_the_document(app, body, "Redemption")
    assert (body["balance"], body["balance_nano_usd"], body["amount"]) == (6.0, usd_to_nano(6), 5.0)
    assert body["code"]["prefix"] == plaintext[:10]
    assert client.get("/auth/users/me", headers=auth_headers(member)).get_json()["balance"] == 6.0
    assert db.session.scalars(db.select(BalanceAdjustment.kind).where(
        BalanceAdjustment.user_id == member.id).order_by(BalanceAdjustment.id)).all() == ["signup", "redeem"]
    assert all(check.consistent for check in balances.check_balances(db.session))


def test_refusals_are_the_same_for_every_caller(client, member, make_user, auth_headers, code, db_snapshot):
    used, expired = code(), code(expires_at=utcnow() + timedelta(milliseconds=1))
    bob = make_user(email="bob@example.com")
    assert client.post("/api/redeem", json={"code": used}, headers=auth_headers(member)).status_code == 200
    before = db_snapshot()
    for user in (member, bob):
        answers = {}
        for name, plaintext in (("used", used), ("expired", expired), ("unknown", "gvr-" + "x" * 27)):
            response = client.post("/api/redeem", json={"code": plaintext}, headers=auth_headers(user))
            answers[name] = (response.status_code, response.get_json()["error"]["message"])
        assert {name: status for name, (status, _) in answers.items()} == {"used": 409, "expired": 410,
                                                                            "unknown": 404}
        if user is member:
            first = answers
        else:
            assert answers == first, "nothing tells another caller more (or less) than the one who redeemed it"
    assert db_snapshot() == before


@pytest.mark.parametrize("body", [{}, {"code": ""}, {"code": 5}, {"code": None}, {"code": "x" * 129}, [1]])
def test_bad_bodies_are_refused(client, member, auth_headers, db_snapshot, body):
    before = db_snapshot()
    response = client.post("/api/redeem", json=body, headers=auth_headers(member))
    assert response.status_code == 400 and response.get_json()["error"]["code"] in ("validation_error",
                                                                                     "invalid_request")
    assert db_snapshot() == before


def test_redeem_needs_a_caller_and_csrf_with_a_session(app, client, member, code, db_snapshot):
    plaintext = code()
    before = db_snapshot()
    refused = client.post("/api/redeem", json={"code": plaintext})
    assert refused.status_code == 401 and refused.get_json()["error"]["code"] == "unauthenticated"
    browser = app.test_client()
    log_in(browser, "ada@example.com")
    assert browser.post("/api/redeem", json={"code": plaintext}).status_code == 400  # no X-CSRFToken
    assert db_snapshot() == before
    token = csrf_token(browser, "/dashboard")
    done = browser.post("/api/redeem", json={"code": plaintext}, headers={"X-CSRFToken": token})
    assert done.status_code == 200 and done.get_json()["balance"] == 6.0


def test_attempts_are_rate_limited_per_user_and_address(app, client, member, make_user, auth_headers, code):
    app.config["VAULT_REDEEM_PER_HOUR"] = 3
    headers = auth_headers(member)
    for _ in range(3):
        assert client.post("/api/redeem", json={"code": "gvr-guess"}, headers=headers).status_code == 404
    plaintext = code()
    limited = client.post("/api/redeem", json={"code": plaintext}, headers=headers)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert db.session.get(User, member.id).balance_nano == usd_to_nano(1), "a limited attempt tries nothing"
    others = [make_user(email=f"user{n}@example.com") for n in range(4)]
    statuses = [client.post("/api/redeem", json={"code": "gvr-guess"}, headers=auth_headers(other)).status_code
                for other in others for _ in range(3)]
    # The address has room for 4 x 3 attempts; 3 were ada's.
    assert statuses.count(404) == 9 and statuses[9:] == [429, 429, 429]


# The dashboard form


def test_the_dashboard_form_redeems_and_refuses_with_the_api_statuses(app, member, code):
    browser = app.test_client()
    log_in(browser, "ada@example.com")
    home = browser.get("/dashboard").get_data(as_text=True)
    assert 'action="/dashboard/redeem"' in home and "Redemption code" in home
    token = csrf_token(browser, "/dashboard")
    plaintext = code("2.5")
    done = browser.post("/dashboard/redeem", data={"code": plaintext, "csrf_token": token}, follow_redirects=True)
    assert done.status_code == 200
    assert f"Code {plaintext[:10]}… added $2.50; your balance is $3.50." in done.get_data(as_text=True)
    again = browser.post("/dashboard/redeem", data={"code": plaintext, "csrf_token": token})
    assert again.status_code == 409 and "already been redeemed" in again.get_data(as_text=True)
    unknown = browser.post("/dashboard/redeem", data={"code": "gvr-nope", "csrf_token": token})
    assert unknown.status_code == 404 and "No such redemption code" in unknown.get_data(as_text=True)
    empty = browser.post("/dashboard/redeem", data={"code": "", "csrf_token": token})
    assert empty.status_code == 400 and 'aria-invalid="true"' in empty.get_data(as_text=True)
    assert db.session.get(User, member.id).balance_nano == usd_to_nano("3.5")


def test_the_dashboard_form_needs_csrf_and_a_login(app, member, code, db_snapshot):
    plaintext = code()
    before = db_snapshot()
    anonymous = app.test_client().post("/dashboard/redeem", data={"code": plaintext})
    assert anonymous.status_code in (302, 400)
    browser = app.test_client()
    log_in(browser, "ada@example.com")
    refused = browser.post("/dashboard/redeem", data={"code": plaintext})
    assert refused.status_code == 400 and b"CSRF" in refused.data
    assert db_snapshot() == before


def test_a_rate_limited_form_says_when_to_retry(app, member):
    app.config["VAULT_REDEEM_PER_HOUR"] = 1
    browser = app.test_client()
    log_in(browser, "ada@example.com")
    token = csrf_token(browser, "/dashboard")
    assert browser.post("/dashboard/redeem", data={"code": "gvr-a", "csrf_token": token}).status_code == 404
    limited = browser.post("/dashboard/redeem", data={"code": "gvr-b", "csrf_token": token})
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert "Too many redemption attempts" in limited.get_data(as_text=True)


@pytest.mark.parametrize("variant", [str.upper, str.lower, lambda code: f"  {code}\t", lambda code: code + "x"])
def test_redeem_guesses_all_count_whatever_their_spelling(app, client, make_user, auth_headers, variant):
    app.config["VAULT_REDEEM_PER_HOUR"] = 3
    user = make_user()
    guesses = [variant(f"gvr-guess-{number:020d}") for number in range(4)]
    statuses = [client.post("/api/redeem", json={"code": guess}, headers=auth_headers(user)).status_code
                for guess in guesses]
    assert statuses == [404, 404, 404, 429]
