"""The audit trail: each admin action, through the API or a page, leaves exactly one entry with who,
what, before/after and from where; a refused one leaves none; the API filters; nobody edits it."""

from datetime import timedelta

import pytest

from tests.test_pages import csrf_token, log_in
from vault import accounts, audit, idempotency, pool
from vault.billing import prices
from vault.clock import isoformat, utcnow
from vault.extensions import db
from vault.models import AuditEntry, ModelPrice, UpstreamKey
from vault.routing import changes
from vault.runtime import runtime

IP = "203.0.113.7"
PRICE = {"input": 1, "output": 2}


@pytest.fixture
def api(app, admin_headers):
    """A JSON API client of the admin, calling from `IP`."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = IP
    client.environ_base["HTTP_AUTHORIZATION"] = admin_headers["Authorization"]
    return client


@pytest.fixture
def browser(app, admin):
    """The admin signed in to the pages, from `IP`."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = IP
    log_in(client, "root@example.com")
    return client


def post_page(browser, path: str, form: dict | None = None):
    """Post a form as the page would send it: its CSRF token and a fresh form token (`vault.idempotency`)."""
    token = {"csrf_token": csrf_token(browser, "/admin/users"), "form_token": idempotency.new_token()}
    return browser.post(path, data=(form or {}) | token)


def entries() -> list[AuditEntry]:
    db.session.expire_all()
    return list(db.session.scalars(db.select(AuditEntry).order_by(AuditEntry.id)))


def only_entry() -> AuditEntry:
    found = entries()
    assert len(found) == 1, [(entry.action, entry.before, entry.after) for entry in found]
    return found[0]


def pooled_key(label: str = "") -> UpstreamKey:
    (added,) = pool.add_upstream_keys(db.session, ["AIza" + "k" * 35], runtime().secret_box)
    added.key.label = label
    db.session.commit()
    return added.key


def priced(model: str = "gemini-x") -> str:
    prices.upsert_price(db.session, model, prices.PriceInput(input=1, output=2))
    db.session.commit()
    return model


def aliased(alias: str = "fast") -> str:
    changes.put_alias(db.session, alias, "gemini-2.5-flash", None)
    db.session.commit()
    return alias


# Each case: (setup(make_user, make_api_key) -> the request, action, target, before, after). Before/after
# name only what the entry must hold exactly.

def user_deactivated(make_user, _make_api_key):
    user = make_user()
    return ("PATCH", f"/admin/api/users/{user.id}", {"is_active": False}, f"/admin/users/{user.id}/active",
            {"value": "off"}, "user.update", f"user:{user.id}", {"is_active": True}, {"is_active": False})


def user_promoted(make_user, _make_api_key):
    user = make_user()
    return ("PATCH", f"/admin/api/users/{user.id}", {"is_admin": True}, f"/admin/users/{user.id}/admin",
            {"value": "on"}, "user.update", f"user:{user.id}", {"is_admin": False}, {"is_admin": True})


def balance_added(make_user, _make_api_key):
    user = make_user(balance="1.00")
    after = {"balance": "3.5", "change": "add", "amount": "2.5", "reason": "invoice 7"}
    return ("PATCH", f"/admin/api/users/{user.id}", {"balance_delta": 2.5, "reason": "invoice 7"},
            f"/admin/users/{user.id}/balance", {"mode": "add", "amount": "2.5", "reason": "invoice 7"},
            "user.balance", f"user:{user.id}", {"balance": "1"}, after)


def balance_set(make_user, _make_api_key):
    user = make_user(balance="4.00")
    after = {"balance": "0.25", "change": "set", "amount": "-3.75", "reason": "refund"}
    return ("PATCH", f"/admin/api/users/{user.id}", {"balance": 0.25, "reason": "refund"},
            f"/admin/users/{user.id}/balance", {"mode": "set", "amount": "0.25", "reason": "refund"},
            "user.balance", f"user:{user.id}", {"balance": "4"}, after)


def limits_set(make_user, _make_api_key):
    user = make_user()
    return ("PATCH", f"/admin/api/users/{user.id}", {"limits": {"rate_limit_rpm": 60}},
            f"/admin/users/{user.id}/limits", {"rate_limit_rpm": "60"}, "user.limits", f"user:{user.id}",
            {"limits": None}, {"limits": {"rate_limit_rpm": 60}})


def key_policy_set(make_user, make_api_key):
    user = make_user()
    key = make_api_key(user).record
    return ("PATCH", f"/admin/api/api-keys/{key.id}", {"rate_limit_rpm": 30},
            f"/admin/users/{user.id}/keys/{key.id}/limit", {"rate_limit_rpm": "30"}, "api_key.policy",
            f"api_key:{key.id}", {"rate_limit_rpm": None}, {"rate_limit_rpm": 30})


def pool_key_disabled(_make_user, _make_api_key):
    key = pooled_key()
    return ("PATCH", f"/admin/api/upstream-keys/{key.id}", {"state": "disabled"}, f"/admin/keys/{key.id}/state",
            {"value": "off"}, "pool.update", f"upstream_key:{key.id}", {"state": "active"}, {"state": "disabled"})


def pool_key_proxied(_make_user, _make_api_key):
    key = pooled_key()
    proxy = "http://bob:hunter22@proxy.example:3128"
    return ("PATCH", f"/admin/api/upstream-keys/{key.id}", {"proxy_url": proxy}, f"/admin/keys/{key.id}/proxy",
            {"proxy_url": proxy}, "pool.update", f"upstream_key:{key.id}", {"proxy": None},
            {"proxy": "http://bob:***@proxy.example:3128"})


def pool_key_deleted(_make_user, _make_api_key):
    key = pooled_key()
    return ("DELETE", f"/admin/api/upstream-keys/{key.id}", None, f"/admin/keys/{key.id}/delete", {},
            "pool.delete", f"upstream_key:{key.id}", {"state": "active"}, {"state": "deleted"})


def price_created(_make_user, _make_api_key):
    form = {"model": "gemini-x", "input": "1", "output": "2", "grounding_unit": "prompt"}
    return ("PUT", "/admin/api/prices/gemini-x", PRICE, "/admin/prices", form, "price.put", "price:gemini-x",
            None, {"model": "gemini-x", "input_nano": 10**9, "output_nano": 2 * 10**9})


def price_changed(_make_user, _make_api_key):
    priced()
    form = {"model": "gemini-x", "input": "1", "output": "3", "grounding_unit": "prompt"}
    return ("PUT", "/admin/api/prices/gemini-x", {"input": 1, "output": 3}, "/admin/prices", form, "price.put",
            "price:gemini-x", {"output_nano": 2 * 10**9}, {"output_nano": 3 * 10**9})


def price_deleted(_make_user, _make_api_key):
    priced()
    return ("DELETE", "/admin/api/prices/gemini-x", None, "/admin/prices/gemini-x/delete", {}, "price.delete",
            "price:gemini-x", {"model": "gemini-x", "input_nano": 10**9}, None)


def alias_created(_make_user, _make_api_key):
    return ("PUT", "/admin/api/model-aliases/fast", {"target": "gemini-2.5-flash"}, "/admin/models/aliases",
            {"alias": "fast", "target": "gemini-2.5-flash"}, "alias.put", "alias:fast", None,
            {"target": "gemini-2.5-flash", "defaults": None})


def alias_deleted(_make_user, _make_api_key):
    aliased()
    return ("DELETE", "/admin/api/model-aliases/fast", None, "/admin/models/aliases/fast/delete", {},
            "alias.delete", "alias:fast", {"target": "gemini-2.5-flash", "defaults": None}, None)


def model_hidden(_make_user, _make_api_key):
    return ("PUT", "/admin/api/models/gemini-old", {"hidden": True}, "/admin/models/settings",
            {"model": "gemini-old", "hidden": "y"}, "model.settings", "model:gemini-old", {"hidden": False},
            {"hidden": True})


CASES = [user_deactivated, user_promoted, balance_added, balance_set, limits_set, key_policy_set,
         pool_key_disabled, pool_key_proxied, pool_key_deleted, price_created, price_changed, price_deleted,
         alias_created, alias_deleted, model_hidden]


def check_entry(entry: AuditEntry, admin, action: str, target: str, before: dict | None, after: dict | None):
    assert (entry.actor_id, entry.actor_email, entry.action, entry.target, entry.ip) == (
        admin.id, "root@example.com", action, target, IP)
    for expected, stored in ((before, entry.before), (after, entry.after)):
        if expected is None:
            assert stored is None
        else:
            assert stored is not None and {name: stored.get(name, "absent") for name in expected} == expected
    assert utcnow() - entry.at < timedelta(minutes=1)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
def test_each_api_action_leaves_one_entry(api, admin, make_user, make_api_key, case):
    method, path, body, _page, _form, action, target, before, after = case(make_user, make_api_key)
    response = api.open(path, method=method, json=body)
    assert response.status_code in (200, 204), response.get_data(as_text=True)
    check_entry(only_entry(), admin, action, target, before, after)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
def test_each_page_action_leaves_one_entry(browser, admin, make_user, make_api_key, case):
    _method, _path, _body, page, form, action, target, before, after = case(make_user, make_api_key)
    response = post_page(browser, page, form)
    assert response.status_code == 302, response.get_data(as_text=True)
    check_entry(only_entry(), admin, action, target, before, after)


def test_invites_are_audited_without_their_code(api, browser, admin):
    created = api.post("/admin/api/invites", json={"note": "grace"})
    assert created.status_code == 201
    entry = only_entry()
    check_entry(entry, admin, "invite.create", f"invite:{created.json['id']}", None,
                {"prefix": created.json["prefix"], "note": "grace"})
    assert created.json["code"] not in repr((entry.before, entry.after))
    assert api.delete(f"/admin/api/invites/{created.json['id']}").status_code == 204
    revoked = entries()[-1]
    check_entry(revoked, admin, "invite.revoke", f"invite:{created.json['id']}", {"note": "grace"}, None)

    page = post_page(browser, "/admin/invites", {"note": "linus"})
    assert page.status_code == 201
    invite_id = accounts.list_invites(db.session)[0].id
    check_entry(entries()[-1], admin, "invite.create", f"invite:{invite_id}", None, {"note": "linus"})
    assert post_page(browser, f"/admin/invites/{invite_id}/revoke").status_code == 302
    check_entry(entries()[-1], admin, "invite.revoke", f"invite:{invite_id}", {"note": "linus"}, None)
    assert len(entries()) == 4


def test_a_change_that_changes_nothing_leaves_no_entry(api, make_user):
    user = make_user()
    assert api.patch(f"/admin/api/users/{user.id}", json={"is_active": True}).status_code == 200
    assert entries() == []


def test_secrets_never_reach_an_entry(api):
    key = pooled_key()
    secret = "AIza" + "k" * 35
    api.patch(f"/admin/api/upstream-keys/{key.id}", json={"proxy_url": "http://bob:hunter22@proxy.example:3128"})
    api.delete(f"/admin/api/upstream-keys/{key.id}")
    stored = repr([(entry.before, entry.after) for entry in entries()])
    assert len(entries()) == 2 and secret not in stored and "hunter22" not in stored and "encrypted" not in stored


@pytest.mark.parametrize("request_args", [
    ("PATCH", "users", {"balance_delta": 5}),  # no reason
    ("PATCH", "users", {"balance": 1, "balance_delta": 1, "reason": "x"}),
    ("PATCH", "users", {"is_active": "no"}),
    ("PATCH", "users", {"limits": {"rate_limit_rpm": -1}}),
    ("PATCH", "self", {"is_admin": False}),  # an admin cannot lock themselves out (403)
    ("PATCH", "self", {"is_active": False}),
    ("PATCH", "api-keys", {"rate_limit_rpm": "many"}),
    ("PATCH", "upstream-keys", {"state": "asleep"}),
    ("PATCH", "upstream-keys", {"proxy_url": "ftp://nope"}),
    ("DELETE", "missing-upstream-key", None),
    ("PUT", "prices", {"input": -1, "output": 2}),
    ("DELETE", "missing-price", None),
    ("PUT", "aliases", {"target": "fast"}),  # an alias to itself
    ("DELETE", "missing-alias", None),
    ("PUT", "models", {"hidden": True, "fallback": ["gemini-old"]}),  # itself
    ("POST", "invites", {"expires_at": "2001-01-01T00:00:00Z"}),
    ("DELETE", "missing-invite", None),
])
def test_a_refused_api_action_leaves_no_entry(api, admin, make_user, make_api_key, request_args):
    method, kind, body = request_args
    user = make_user()
    key = make_api_key(user).record
    upstream = pooled_key()
    paths = {"users": f"/admin/api/users/{user.id}", "self": f"/admin/api/users/{admin.id}",
             "api-keys": f"/admin/api/api-keys/{key.id}", "upstream-keys": f"/admin/api/upstream-keys/{upstream.id}",
             "missing-upstream-key": "/admin/api/upstream-keys/9999", "prices": "/admin/api/prices/gemini-x",
             "missing-price": "/admin/api/prices/gemini-x", "aliases": "/admin/api/model-aliases/fast",
             "missing-alias": "/admin/api/model-aliases/fast", "models": "/admin/api/models/gemini-old",
             "invites": "/admin/api/invites", "missing-invite": "/admin/api/invites/9999"}
    response = api.open(paths[kind], method=method, json=body)
    assert 400 <= response.status_code < 500, response.get_data(as_text=True)
    assert entries() == []


def test_a_used_invite_cannot_be_revoked_and_leaves_no_entry(api, admin, make_user):
    new = accounts.create_invite(db.session, admin, "", None)
    new.record.used_at, new.record.used_by = utcnow(), make_user().id
    db.session.commit()
    assert api.delete(f"/admin/api/invites/{new.record.id}").status_code == 409
    assert entries() == []


def test_a_refused_page_action_leaves_no_entry(browser, admin, make_user):
    user = make_user()
    refusals = [
        (f"/admin/users/{user.id}/balance", {"mode": "add", "amount": "lots", "reason": ""}, 400),
        (f"/admin/users/{admin.id}/active", {"value": "off"}, 403),
        (f"/admin/users/{admin.id}/admin", {"value": "off"}, 403),
        (f"/admin/users/{user.id}/limits", {"max_concurrency": "0"}, 400),
        ("/admin/prices", {"model": "gemini-x", "input": "-1", "output": "2"}, 400),
        ("/admin/prices/gemini-x/delete", {}, 404),
        ("/admin/models/aliases", {"alias": "fast", "target": "fast"}, 400),
        ("/admin/models/aliases/fast/delete", {}, 404),
        ("/admin/invites", {"expires_in_days": "0"}, 400),
    ]
    for path, form, status in refusals:
        assert post_page(browser, path, form).status_code == status, path
    without_token = browser.post(f"/admin/users/{user.id}/active", data={"value": "off"})
    assert without_token.status_code == 400
    assert entries() == []


def test_cli_commands_that_change_users_or_money_are_audited(runner):
    created = runner.invoke(args=["create-admin", "--email", "ops@example.com", "--password", "long enough pw"])
    assert created.exit_code == 0, created.output
    entry = only_entry()
    assert (entry.actor_id, entry.actor_email, entry.action, entry.ip) == (None, "", "user.create_admin", "cli")
    assert entry.before is None and entry.after == {"is_active": True, "is_admin": True, "password": "set"}
    seeded = runner.invoke(args=["billing", "seed-prices"])
    assert seeded.exit_code == 0, seeded.output
    written = [entry for entry in entries() if entry.action == "price.put"]
    assert written and len(written) == db.session.scalar(db.select(db.func.count()).select_from(ModelPrice))
    assert all(entry.ip == "cli" and entry.before is None and "input_nano" in entry.after for entry in written)
    assert runner.invoke(args=["billing", "seed-prices"]).exit_code == 0
    assert len(entries()) == len(written) + 1, "nothing written, nothing recorded"


# The audit API


def record(actor, action: str, at, target: str = "user:1") -> None:
    entry = audit.record(db.session, actor, action, target, {"x": 1}, {"x": 2}, "198.51.100.1")
    entry.at = at
    db.session.commit()


def test_the_api_lists_and_filters_entries(api, admin, make_user):
    other = make_user(email="other@example.com", is_admin=True)
    now = utcnow()
    record(admin, "user.balance", now - timedelta(days=3))
    record(other, "pool.update", now - timedelta(days=2), "upstream_key:4")
    record(admin, "pool.delete", now - timedelta(days=1), "upstream_key:4")
    record(None, "price.put", now, "price:gemini-x")

    listed = api.get("/admin/api/audit").json
    assert listed["total"] == 4 and (listed["page"], listed["per_page"]) == (1, 50)
    assert [entry["action"] for entry in listed["entries"]] == ["price.put", "pool.delete", "pool.update",
                                                               "user.balance"]
    first = listed["entries"][1]
    assert first == {"id": first["id"], "at": first["at"], "actor": "root@example.com", "actor_id": admin.id,
                     "action": "pool.delete", "target": "upstream_key:4", "before": {"x": 1}, "after": {"x": 2},
                     "ip": "198.51.100.1"}
    assert listed["entries"][0]["actor"] is None

    def actions(**query) -> list[str]:
        response = api.get("/admin/api/audit", query_string=query)
        assert response.status_code == 200, response.json
        return [entry["action"] for entry in response.json["entries"]]

    assert actions(actor="root@example.com") == ["pool.delete", "user.balance"]
    assert actions(actor="ROOT@example.com ") == ["pool.delete", "user.balance"]
    assert actions(actor=str(other.id)) == ["pool.update"]
    assert actions(actor="nobody@example.com") == []
    assert actions(action="pool.") == ["pool.delete", "pool.update"]
    assert actions(action="pool.update") == ["pool.update"]
    assert actions(action="pool%") == [], "a prefix, not a pattern"
    assert actions(since=isoformat(now - timedelta(days=2, hours=1))) == ["price.put", "pool.delete", "pool.update"]
    assert actions(until=isoformat(now - timedelta(days=1))) == ["pool.update", "user.balance"], "until excludes"
    naive = (now - timedelta(days=1, hours=1)).replace(tzinfo=None).isoformat()
    assert actions(since=naive, actor="root@example.com") == ["pool.delete"], "naive times are UTC"
    paged = api.get("/admin/api/audit", query_string={"per_page": 3, "page": 2}).json
    assert (paged["total"], paged["page"], paged["per_page"]) == (4, 2, 3)
    assert [entry["action"] for entry in paged["entries"]] == ["user.balance"]


@pytest.mark.parametrize("query, field", [
    ({"since": "yesterday"}, "since"), ({"until": "2026-13-45"}, "until"), ({"page": "0"}, "page"),
    ({"page": "x"}, "page"), ({"per_page": "501"}, "per_page"), ({"actor": "9" * 30}, "actor"),
    ({"action": "a" * 65}, "action"),
])
def test_bad_filters_are_a_400_naming_the_field(api, query, field):
    response = api.get("/admin/api/audit", query_string=query)
    assert response.status_code == 400 and field in response.json["error"]["fields"], response.json


def test_non_admins_are_refused(app, make_user, auth_headers):
    user = make_user()
    assert app.test_client().get("/admin/api/audit", headers=auth_headers(user)).status_code == 403
    assert app.test_client().get("/admin/api/audit").status_code == 401
    browser = app.test_client()
    log_in(browser, user.email)
    assert browser.get("/admin/audit").status_code == 403


def test_the_orm_refuses_to_change_or_delete_an_entry(app, admin):
    entry = audit.record(db.session, admin, "user.balance", "user:1", {"balance": "1"}, {"balance": "2"}, IP)
    db.session.commit()
    entry.after = {"balance": "1000"}
    with pytest.raises(PermissionError):
        db.session.commit()
    db.session.rollback()
    db.session.delete(db.session.get(AuditEntry, entry.id))
    with pytest.raises(PermissionError):
        db.session.commit()
    db.session.rollback()
    assert only_entry().after == {"balance": "2"}


def test_no_route_changes_or_deletes_entries(app, api, admin):
    audit_rules = [rule for rule in app.url_map.iter_rules() if "audit" in rule.rule]
    assert {rule.rule for rule in audit_rules} >= {"/admin/api/audit", "/admin/audit"}
    for rule in audit_rules:
        assert rule.methods <= {"GET", "HEAD", "OPTIONS"}, rule
    audit.record(db.session, admin, "user.balance", "user:1", None, {"balance": "2"}, IP)
    db.session.commit()
    entry_id = only_entry().id
    for method in ("PUT", "PATCH", "DELETE", "POST"):
        for path in ("/admin/api/audit", f"/admin/api/audit/{entry_id}", "/admin/audit", f"/admin/audit/{entry_id}"):
            assert api.open(path, method=method, json={}).status_code in (404, 405), (method, path)
    assert only_entry().id == entry_id


# The audit page


def test_the_page_shows_filters_and_pages_entries(browser, admin, monkeypatch):
    from vault.admin import audit_views

    monkeypatch.setattr(audit_views, "PER_PAGE", 2)
    now = utcnow()
    record(admin, "user.balance", now - timedelta(days=2))
    record(admin, "pool.update", now - timedelta(days=1), "upstream_key:4")
    record(None, "price.put", now, "price:<b>x</b>")
    def table(response) -> str:
        text = response.get_data(as_text=True)
        return text[text.index('data-testid="audit-scroll"'):]

    page = browser.get("/admin/audit")
    text = table(page)
    assert page.status_code == 200 and 'data-testid="audit-table"' in text
    assert "price:&lt;b&gt;x&lt;/b&gt;" in text and "operator (CLI)" in text and "pool.update" in text
    assert "user.balance" not in text and "Page 1 of 2" in text and "page=2" in text
    assert ">1</span>" in text and ">2</span>" in text and "became" in text, "before → after"
    second = table(browser.get("/admin/audit?page=2"))
    assert "user.balance" in second and "pool.update" not in second
    filtered = table(browser.get("/admin/audit?action=pool.&actor=root%40example.com"))
    assert "upstream_key:4" in filtered and "price:" not in filtered
    day = (now - timedelta(days=1)).date().isoformat()
    dated = table(browser.get(f"/admin/audit?since={day}&until={day}"))
    assert "pool.update" in dated and "user.balance" not in dated
    bad = browser.get("/admin/audit?since=yesterday")
    assert bad.status_code == 400 and "Use a date like" in bad.get_data(as_text=True)
    assert browser.get("/admin/audit?actor=" + "9" * 30).status_code == 400
    assert 'href="/admin/audit"' in browser.get("/admin/users").get_data(as_text=True), "in the nav"
