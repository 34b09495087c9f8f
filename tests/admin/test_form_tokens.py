"""The per-submission form token on the pages: a form sent twice does its work once."""

import re

import pytest

from tests.test_pages import csrf_token, log_in
from vault.billing import balances
from vault.extensions import db
from vault.idempotency import new_token
from vault.models import BalanceAdjustment, User


@pytest.fixture
def admin(make_user):
    return make_user(email="root@example.com", is_admin=True)


@pytest.fixture
def browser(app):
    return app.test_client()


def balance_form(browser, user_id: int) -> dict[str, str]:
    """The balance form's hidden fields as the user page renders them."""
    page = browser.get(f"/admin/users/{user_id}").get_data(as_text=True)
    form = page[page.index(f'action="/admin/users/{user_id}/balance"'):]
    form = form[:form.index("</form>")]
    fields = dict(re.findall(r'name="(csrf_token|form_token)" value="([^"]+)"', form))
    assert set(fields) == {"csrf_token", "form_token"}
    return fields


def test_the_balance_form_sent_twice_credits_once(browser, admin, make_user):
    user = make_user(balance="0")  # every dollar from the ledger: the check compares them
    log_in(browser, "root@example.com")
    form = balance_form(browser, user.id) | {"mode": "add", "amount": "5", "reason": "invoice 7"}
    first = browser.post(f"/admin/users/{user.id}/balance", data=form,
                         headers={"Referer": f"http://localhost/admin/users/{user.id}"})
    second = browser.post(f"/admin/users/{user.id}/balance", data=form,
                          headers={"Referer": f"http://localhost/admin/users/{user.id}"})
    assert first.status_code == second.status_code == 302
    assert second.headers["Location"] == f"/admin/users/{user.id}"
    db.session.expire_all()
    assert db.session.get(User, user.id).balance_nano == 5 * 10**9
    assert db.session.scalar(db.select(db.func.count(BalanceAdjustment.id))) == 1
    (check,) = balances.check_balances(db.session, user.id)
    assert check.difference == 0
    assert "already sent" in browser.get(second.headers["Location"]).get_data(as_text=True)
    # A freshly rendered form has a new token and works again.
    again = browser.post(f"/admin/users/{user.id}/balance",
                         data=balance_form(browser, user.id) | {"mode": "add", "amount": "1", "reason": "more"})
    assert again.status_code == 302
    db.session.expire_all()
    assert db.session.get(User, user.id).balance_nano == 6 * 10**9


def test_a_refused_balance_form_can_be_corrected_and_sent_with_its_token(browser, admin, make_user):
    user = make_user(balance="1.00")
    log_in(browser, "root@example.com")
    form = balance_form(browser, user.id)
    refused = browser.post(f"/admin/users/{user.id}/balance", data=form | {"mode": "add", "amount": "x", "reason": ""})
    assert refused.status_code == 400
    done = browser.post(f"/admin/users/{user.id}/balance", data=form | {"mode": "add", "amount": "2", "reason": "ok"})
    assert done.status_code == 302
    db.session.expire_all()
    assert db.session.get(User, user.id).balance_nano == 3 * 10**9


@pytest.mark.parametrize(("token", "why"), [(None, "missing"), ("not a token!", "malformed"), ("x" * 65, "too long")])
def test_the_balance_form_needs_a_well_formed_token(browser, admin, make_user, token, why):
    user = make_user(balance="1.00")
    log_in(browser, "root@example.com")
    data = {"csrf_token": csrf_token(browser, f"/admin/users/{user.id}"), "mode": "add", "amount": "5", "reason": "r"}
    if token is not None:
        data["form_token"] = token
    refused = browser.post(f"/admin/users/{user.id}/balance", data=data)
    assert refused.status_code == 400, why
    assert b"reload the page" in refused.data
    db.session.expire_all()
    assert db.session.get(User, user.id).balance_nano == 10**9


def test_other_forms_sent_twice_act_once(browser, admin, make_user):
    """Any form carrying a token (every page's `csrf()`) is guarded, here the dashboard's "Create key"."""
    log_in(browser, "root@example.com")
    token = csrf_token(browser, "/dashboard")
    data = {"csrf_token": token, "form_token": new_token(), "name": "laptop"}
    assert browser.post("/dashboard/keys", data=data).status_code == 201
    repeated = browser.post("/dashboard/keys", data=data, headers={"Referer": "https://evil.example/dashboard"})
    assert repeated.status_code == 302 and repeated.headers["Location"] == "/dashboard"  # never off-site
    listed = browser.get("/api-keys/").get_json()
    assert [key["name"] for key in listed] == ["laptop"]


def test_every_post_form_on_the_pages_carries_a_fresh_token(browser, admin, make_user):
    user = make_user()
    log_in(browser, "root@example.com")
    for path in ("/dashboard", f"/admin/users/{user.id}", "/admin/invites", "/admin/keys", "/admin/prices"):
        page = browser.get(path).get_data(as_text=True)
        forms = [form for form in re.findall(r'<form[^>]*method="post".*?</form>', page, re.S) if "/logout" not in form]
        assert forms, path
        tokens = [re.search(r'name="form_token" value="([^"]+)"', form) for form in forms]
        assert all(tokens), (path, [form[:120] for form, token in zip(forms, tokens, strict=True) if not token])
        values = [token.group(1) for token in tokens]
        assert len(set(values)) == len(values), path
