"""The web pages with the Flask test client: roles, CSRF, validation, escaping, redirects."""

import re

import pytest

from tests.billing.books import settlement
from tests.conftest import DEFAULT_PASSWORD
from vault.billing import ledger
from vault.extensions import db
from vault.idempotency import new_token
from vault.models import ApiKey, BalanceAdjustment, ModelPrice, UpstreamKey, User
from vault.runtime import runtime

USER_PAGES = ["/dashboard", "/account/password"]
ADMIN_PAGES = ["/admin/", "/admin/users", "/admin/users/{admin_id}", "/admin/invites", "/admin/keys", "/admin/prices",
               "/admin/usage", "/admin/usage.csv", "/admin/models"]
PUBLIC_PAGES = ["/login", "/register"]


def csrf_token(client, path: str) -> str:
    """The CSRF token a page hands out, as a browser would read it."""
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page).group(1)


def log_in(client, email: str, password: str = DEFAULT_PASSWORD, next_path: str = ""):
    token = csrf_token(client, "/login")
    return client.post(f"/login{next_path}", data={"email": email, "password": password, "csrf_token": token})


@pytest.fixture
def admin(make_user):
    return make_user(email="root@example.com", is_admin=True)


@pytest.fixture
def browser(app):
    return app.test_client()


@pytest.mark.parametrize("path", PUBLIC_PAGES)
def test_public_pages_render(client, path):
    response = client.get(path)
    assert response.status_code == 200 and b"csrf_token" in response.data


@pytest.mark.parametrize("path", USER_PAGES + ADMIN_PAGES)
def test_anonymous_visitors_are_sent_to_login(client, path):
    response = client.get(path.format(admin_id=1))
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_ordinary_users_are_refused_the_admin_area(browser, make_user, path):
    user = make_user(email="ada@example.com")
    log_in(browser, "ada@example.com")
    response = browser.get(path.format(admin_id=user.id))
    assert response.status_code == 403 and b"Admins only" in response.data


@pytest.mark.parametrize("path", USER_PAGES + ADMIN_PAGES)
def test_admins_see_every_page(browser, admin, path):
    log_in(browser, "root@example.com")
    assert browser.get(path.format(admin_id=admin.id)).status_code == 200


def test_register_logs_in_and_shows_the_dashboard(browser):
    token = csrf_token(browser, "/register")
    response = browser.post("/register", data={"email": "Ada@Example.com", "password": "long enough",
                                               "confirm": "long enough", "csrf_token": token}, follow_redirects=True)
    assert response.status_code == 200 and b"Signed in as ada@example.com" in response.data
    assert db.session.scalar(db.select(BalanceAdjustment.kind)) == "signup"


@pytest.mark.parametrize(("form", "message"), [
    ({"email": "not-an-email", "password": "long enough", "confirm": "long enough"}, b"@-sign"),
    ({"email": "ada@example.com", "password": "short", "confirm": "short"}, b"at least 8"),
    ({"email": "ada@example.com", "password": "long enough", "confirm": "different!"}, b"Passwords differ"),
])
def test_register_shows_errors_next_to_fields(browser, db_snapshot, form, message):
    token = csrf_token(browser, "/register")
    before = db_snapshot()
    response = browser.post("/register", data=form | {"csrf_token": token})
    assert response.status_code == 400 and message in response.data
    assert b'aria-invalid="true"' in response.data
    assert db_snapshot() == before


@pytest.mark.parametrize(("path", "form"), [
    ("/register", {"email": "ada@example.com", "password": "long enough", "confirm": "long enough"}),
    ("/login", {"email": "root@example.com", "password": DEFAULT_PASSWORD}),
])
def test_forms_without_csrf_are_refused(client, admin, db_snapshot, path, form):
    before = db_snapshot()
    response = client.post(path, data=form)
    assert response.status_code == 400 and b"CSRF" in response.data
    assert db_snapshot() == before


@pytest.mark.parametrize("path", ["/dashboard/keys", "/dashboard/keys/1/revoke", "/logout", "/admin/users/1/balance",
                                  "/admin/users/1/active", "/admin/users/1/admin", "/admin/keys",
                                  "/admin/keys/1/state", "/admin/keys/1/delete", "/admin/keys/1/check",
                                  "/admin/prices", "/admin/prices/gemini-2.5-flash/delete", "/account/password",
                                  "/admin/users/1/keys/1/limit", "/admin/invites", "/admin/invites/1/revoke",
                                  "/admin/models/settings", "/admin/models/aliases", "/admin/models/aliases/x/delete"])
def test_logged_in_posts_without_csrf_are_refused(browser, admin, db_snapshot, path):
    log_in(browser, "root@example.com")
    before = db_snapshot()
    response = browser.post(path, data={"name": "x", "value": "off", "keys": "AIzaSyExample000000000000000001",
                                        "mode": "set", "amount": "5", "reason": "x", "model": "m", "input": "1",
                                        "output": "1"})
    assert response.status_code == 400 and b"CSRF" in response.data
    assert db_snapshot() == before


def test_login_redirects_only_to_our_own_paths(browser, make_user):
    make_user(email="ada@example.com")
    assert log_in(browser, "ada@example.com", next_path="?next=/account/password").headers["Location"] == \
        "/account/password"
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"):
        browser.post("/logout", data={"csrf_token": csrf_token(browser, "/dashboard")})
        response = log_in(browser, "ada@example.com", next_path=f"?next={target}")
        assert response.headers["Location"] == "/dashboard", target


def test_wrong_passwords_are_throttled(browser, make_user):
    make_user(email="ada@example.com")
    for _ in range(5):
        assert log_in(browser, "ada@example.com", "wrong password").status_code == 401
    response = log_in(browser, "ada@example.com")
    assert response.status_code == 429 and b"Too many failed logins" in response.data


def test_logout_ends_every_session(app, make_user):
    make_user(email="ada@example.com")
    first, second = app.test_client(), app.test_client()
    log_in(first, "ada@example.com")
    log_in(second, "ada@example.com")
    assert first.post("/logout", data={"csrf_token": csrf_token(first, "/dashboard")}).status_code == 302
    assert second.get("/dashboard").status_code == 302
    assert first.get("/logout").status_code == 405


def test_create_key_shows_it_once_and_revoke_asks_first(browser, make_user):
    make_user(email="ada@example.com")
    log_in(browser, "ada@example.com")
    token = csrf_token(browser, "/dashboard")
    created = browser.post("/dashboard/keys", data={"name": "laptop", "csrf_token": token})
    assert created.status_code == 201 and b"you will not see it again" in created.data
    plaintext = re.search(rb'value="(gv-[A-Za-z0-9_-]{43})"', created.data).group(1).decode()
    again = browser.get("/dashboard").get_data(as_text=True)
    assert plaintext not in again and "data-confirm=" in again
    key = db.session.scalar(db.select(ApiKey))
    revoked = browser.post(f"/dashboard/keys/{key.id}/revoke", data={"csrf_token": token}, follow_redirects=True)
    assert b"was revoked" in revoked.data
    db.session.expire_all()
    assert db.session.get(ApiKey, key.id).revoked_at is not None


def test_a_long_key_name_is_refused(browser, make_user, db_snapshot):
    make_user(email="ada@example.com")
    log_in(browser, "ada@example.com")
    before = db_snapshot()
    token = csrf_token(browser, "/dashboard")
    response = browser.post("/dashboard/keys", data={"name": "n" * 101, "csrf_token": token})
    assert response.status_code == 400 and b"100 characters" in response.data
    assert db_snapshot() == before


def test_html_is_escaped_everywhere(browser, admin, make_user, make_api_key):
    user = make_user(email="eve@example.com")
    key = make_api_key(user, name="<script>alert('key')</script>").record
    session = runtime().session_factory()
    ledger.settle(session, settlement(user.id, api_key_id=key.id, model="<script>alert('model')</script>"))
    session.close()
    log_in(browser, "root@example.com")
    for path in (f"/admin/users/{user.id}", "/admin/usage"):
        page = browser.get(path).get_data(as_text=True)
        assert "<script>alert(" not in page and "&lt;script&gt;alert(" in page, path


def test_admin_changes_a_balance_with_a_reason(browser, admin, make_user, db_snapshot):
    user = make_user(balance="1.00")
    log_in(browser, "root@example.com")
    token = csrf_token(browser, f"/admin/users/{user.id}")
    before = db_snapshot()
    refused = browser.post(f"/admin/users/{user.id}/balance", data={"mode": "add", "amount": "lots", "reason": "",
                                                                    "csrf_token": token, "form_token": new_token()})
    assert refused.status_code == 400 and b"This field is required" in refused.data
    assert db_snapshot() == before
    browser.post(f"/admin/users/{user.id}/balance", data={"mode": "add", "amount": "2.5", "reason": "top-up",
                                                          "csrf_token": token, "form_token": new_token()})
    db.session.expire_all()
    assert db.session.get(User, user.id).balance_nano == 3_500_000_000
    assert db.session.scalar(db.select(BalanceAdjustment.reason)) == "top-up"


def test_admin_cannot_lock_themselves_out_in_the_pages(browser, admin, db_snapshot):
    log_in(browser, "root@example.com")
    token = csrf_token(browser, f"/admin/users/{admin.id}")
    before = db_snapshot()
    for action in ("active", "admin"):
        response = browser.post(f"/admin/users/{admin.id}/{action}", data={"value": "off", "csrf_token": token})
        assert response.status_code == 403
    assert db_snapshot() == before


def test_deactivating_a_user_ends_their_session(app, admin, make_user):
    user = make_user(email="ada@example.com")
    theirs, mine = app.test_client(), app.test_client()
    log_in(theirs, "ada@example.com")
    log_in(mine, "root@example.com")
    token = csrf_token(mine, f"/admin/users/{user.id}")
    mine.post(f"/admin/users/{user.id}/active", data={"value": "off", "csrf_token": token})
    assert theirs.get("/dashboard").status_code == 302


def test_pool_page_adds_checks_disables_and_deletes(browser, admin, fake_gemini, app):
    app.config["GEMINI_BASE_URL"] = fake_gemini.base_url
    runtime().upstream.base_url = fake_gemini.base_url
    log_in(browser, "root@example.com")
    token = csrf_token(browser, "/admin/keys")
    good, bad = fake_gemini.new_key(), fake_gemini.new_key()
    fake_gemini.remove_key(bad)
    added = browser.post("/admin/keys", data={"keys": f"{good}\n{bad}, {good}", "csrf_token": token},
                         follow_redirects=True)
    assert b"Added 2 key(s); 1 already in the pool" in added.data
    page = added.get_data(as_text=True)
    assert good not in page and bad not in page and f"{good[:4]}…{good[-4:]}" in page
    good_row, bad_row = db.session.scalars(db.select(UpstreamKey).order_by(UpstreamKey.id)).all()
    assert b"works" in browser.post(f"/admin/keys/{good_row.id}/check", data={"csrf_token": token},
                                    follow_redirects=True).data
    checked = browser.post(f"/admin/keys/{bad_row.id}/check", data={"csrf_token": token}, follow_redirects=True)
    assert b"failed: 400 API_KEY_INVALID" in checked.data
    db.session.expire_all()
    assert db.session.get(UpstreamKey, bad_row.id).state.value == "disabled"
    browser.post(f"/admin/keys/{good_row.id}/state", data={"value": "off", "csrf_token": token})
    deleted = browser.post(f"/admin/keys/{bad_row.id}/delete", data={"csrf_token": token}, follow_redirects=True)
    assert b"was removed from the pool" in deleted.data
    db.session.expire_all()
    states = [(key.state.value, key.secret_encrypted == "") for key in db.session.scalars(
        db.select(UpstreamKey).order_by(UpstreamKey.id))]
    assert states == [("disabled", False), ("deleted", True)], "deleted softly, its secret wiped"
    assert bad_row.masked not in browser.get("/admin/keys").get_data(as_text=True)
    assert browser.post(f"/admin/keys/{bad_row.id}/delete", data={"csrf_token": token}).status_code == 404
    refused = browser.post("/admin/keys", data={"keys": "not a key!", "csrf_token": token})
    assert refused.status_code == 400


def test_prices_page_saves_and_removes(browser, admin, db_snapshot):
    log_in(browser, "root@example.com")
    token = csrf_token(browser, "/admin/prices")
    before = db_snapshot()
    refused = browser.post("/admin/prices", data={"model": "bad model!", "input": "-1", "output": "",
                                                  "csrf_token": token})
    assert refused.status_code == 400
    assert db_snapshot() == before
    browser.post("/admin/prices", data={"model": "models/gemini-x", "input": "1.25", "output": "10",
                                        "csrf_token": token})
    row = db.session.get(ModelPrice, "gemini-x")
    assert (row.input_nano, row.output_nano, row.cached_nano) == (1_250_000_000, 10_000_000_000, 1_250_000_000)
    browser.post("/admin/prices/gemini-x/delete", data={"csrf_token": token})
    assert db.session.query(ModelPrice).count() == 0


def test_usage_log_filters_and_csv(browser, admin, make_user):
    user = make_user(email="ada@example.com")
    session = runtime().session_factory()
    ledger.settle(session, settlement(user.id, model="=HYPERLINK(\"http://evil\")", cost=1234))
    ledger.settle(session, settlement(user.id, status=502, model="gemini-2.5-pro"))
    session.close()
    log_in(browser, "root@example.com")
    page = browser.get("/admin/usage?user=ada@example.com&status=502").get_data(as_text=True)
    assert "gemini-2.5-pro" in page and "HYPERLINK" not in page
    assert browser.get("/admin/usage?user=nobody@example.com").status_code == 400
    assert b"Use a date like" in browser.get("/admin/usage?since=yesterday").data
    exported = browser.get("/admin/usage.csv?user=ada@example.com")
    assert exported.mimetype == "text/csv" and "attachment" in exported.headers["Content-Disposition"]
    lines = exported.get_data(as_text=True).splitlines()
    assert lines[0].startswith("started_at,settlement_id,client_request_id") and len(lines) == 3
    assert "'=HYPERLINK" in exported.get_data(as_text=True)


def test_csv_export_streams_every_row_across_batches(browser, admin, make_user, monkeypatch):
    from datetime import UTC, datetime

    from vault.billing import queries

    user = make_user(email="many@example.com")
    session = runtime().session_factory()
    same_moment = datetime(2026, 11, 1, tzinfo=UTC)  # ties on started_at must not skip or repeat rows
    for n in range(25):
        moment = {"started_at": same_moment} if n % 2 else {}
        ledger.settle(session, settlement(user.id, model=f"m{n}", **moment))
    session.close()
    real = queries.every_record
    monkeypatch.setattr(queries, "every_record", lambda factory, filters: real(factory, filters, batch=4))
    log_in(browser, "root@example.com")
    exported = browser.get("/admin/usage.csv?user=many@example.com")
    assert exported.is_streamed
    lines = exported.get_data(as_text=True).splitlines()[1:]
    assert sorted(line.split(",")[7] for line in lines) == sorted(f"m{n}" for n in range(25))


def test_user_list_searches_sorts_and_pages(browser, admin, make_user):
    for n in range(30):
        make_user(email=f"person{n:02d}@example.com")
    log_in(browser, "root@example.com")
    page = browser.get("/admin/users?q=person0&sort=email").get_data(as_text=True)
    assert page.index("person00@") < page.index("person09@") and "person10@" not in page
    first = browser.get("/admin/users?sort=email").get_data(as_text=True)
    assert "Page 1 of 2" in first and "person00@" in first
    assert "person29@" in browser.get("/admin/users?sort=email&page=2").get_data(as_text=True)


def test_admin_sets_a_keys_rate_limit(browser, admin, make_user, make_api_key, db_snapshot):
    user = make_user()
    key = make_api_key(user).record
    log_in(browser, "root@example.com")
    token = csrf_token(browser, f"/admin/users/{user.id}")
    before = db_snapshot()
    assert browser.post(f"/admin/users/{user.id}/keys/{key.id}/limit",
                        data={"rate_limit_rpm": "-3", "csrf_token": token}).status_code == 400
    assert browser.post(f"/admin/users/{admin.id}/keys/{key.id}/limit",
                        data={"rate_limit_rpm": "5", "csrf_token": token}).status_code == 404
    assert db_snapshot() == before
    browser.post(f"/admin/users/{user.id}/keys/{key.id}/limit", data={"rate_limit_rpm": "30", "csrf_token": token})
    db.session.expire_all()
    assert db.session.get(ApiKey, key.id).rate_limit_rpm == 30
    browser.post(f"/admin/users/{user.id}/keys/{key.id}/limit", data={"rate_limit_rpm": "", "csrf_token": token})
    db.session.expire_all()
    assert db.session.get(ApiKey, key.id).rate_limit_rpm is None
