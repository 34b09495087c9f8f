"""Files and caches for admins: per user (page and API), per upstream key (pool page and API), and
what revoking a Vault key does to them (dashboard)."""

import re
from datetime import timedelta

import pytest
from jsonschema import Draft202012Validator

from tests.test_openapi import closed
from tests.test_pages import csrf_token, log_in
from vault import pool
from vault.clock import utcnow
from vault.extensions import db
from vault.models import StoredResource, UpstreamKey
from vault.openapi import build_openapi
from vault.resources import summary
from vault.runtime import runtime

SECRETS = {"active": "AIzaActiveKey-0001", "disabled": "AIzaDisabledKey-0002", "deleted": "AIzaDeletedKey-0003"}
QUOTA = 10 * 1024**2


@pytest.fixture
def admin_browser(app, admin):
    browser = app.test_client()
    log_in(browser, "root@example.com")
    return browser


@pytest.fixture
def upstream(app) -> dict[str, UpstreamKey]:
    """Three pooled keys: one active, one disabled by an admin, one deleted."""
    keys = {name: pool.add_upstream_key(db.session, secret, runtime().secret_box).key
            for name, secret in SECRETS.items()}
    keys["active"].label = "project alpha"
    pool.set_upstream_key_state(db.session, keys["disabled"], False)
    pool.delete_upstream_key(db.session, keys["deleted"])
    db.session.commit()
    return keys


def add_resource(user, name: str, key: UpstreamKey | None, api_key=None, **fields) -> StoredResource:
    """A committed record of a resource `user` made with `api_key`, held by `key`."""
    kind = "cache" if name.startswith("cachedContents/") else "file"
    row = StoredResource(kind=kind, name=name, user_id=user.id, api_key_id=api_key.id if api_key else None,
                         upstream_key_id=key.id if key else None, **fields)
    db.session.add(row)
    db.session.commit()
    return row


@pytest.fixture
def ada(app, make_user, make_api_key, upstream):
    """A user with one resource in each state, and another user with a live file on the same key."""
    user = make_user(email="ada@example.com")
    laptop = make_api_key(user, "laptop").record
    now, active = utcnow(), upstream["active"]
    add_resource(user, "files/live", active, laptop, size_bytes=1536, mime_type="image/png",
                 display_name="<b>cat</b>.png", expires_at=now + timedelta(hours=47))
    add_resource(user, "cachedContents/old", active, laptop, token_count=4321, model="models/gemini-2.5-flash",
                 expires_at=now - timedelta(minutes=1))
    add_resource(user, "files/gone", active, laptop, size_bytes=99, deleted_at=now - timedelta(hours=1))
    add_resource(user, "files/paused", upstream["disabled"], laptop, size_bytes=2048)
    add_resource(user, "files/lost", upstream["deleted"], None, size_bytes=4096)
    app.config["VAULT_USER_STORAGE_BYTES"] = QUOTA
    bob = make_user(email="bob@example.com")
    add_resource(bob, "files/bobs-secret", active, make_api_key(bob).record, size_bytes=7)
    return user


EXPECTED_STATES = {"files/live": "live", "cachedContents/old": "expired", "files/gone": "deleted",
                   "files/paused": "key_disabled", "files/lost": "key_removed"}


def table_rows(html: str, testid: str) -> list[str]:
    """The body rows of the table with `data-testid=testid`."""
    table = re.search(rf'data-testid="{testid}">(.*?)</table>', html, re.S).group(1)
    return re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>", 1)[1], re.S)


# The admin user page


def test_user_page_lists_resources_with_their_states(admin_browser, ada, upstream):
    html = admin_browser.get(f"/admin/users/{ada.id}").get_data(as_text=True)
    rows = table_rows(html, "resources-table")
    states = {re.search(r'font-mono text-xs">([^<]+)<', row).group(1): re.search(r'data-state="(\w+)"', row).group(1)
              for row in rows}
    assert states == EXPECTED_STATES
    assert [name for name in states] == ["files/lost", "files/paused", "files/gone", "cachedContents/old",
                                         "files/live"], "newest first"
    live = next(row for row in rows if "files/live" in row)
    assert "1.5 KiB" in live and "image/png" in live and "AIza…0001" in live and "project alpha" in live
    assert "&lt;b&gt;cat&lt;/b&gt;.png" in live and "<b>cat" not in html
    assert ada.api_keys[0].prefix + "…" in live
    cache = next(row for row in rows if "cachedContents/old" in row)
    assert "4,321" in cache and ">expired<" in cache
    assert ">key disabled<" in html and ">key removed<" in html
    assert "files/bobs-secret" not in html
    assert not any(secret in html for secret in SECRETS.values())
    storage = re.search(r'data-testid="user-storage">(.*?)</p>', html, re.S).group(1)
    assert "7.5 KiB" in storage and "10.0 MiB" in storage  # live files on any key: 1536 + 2048 + 4096 bytes


def test_user_page_without_resources(admin_browser, make_user):
    user = make_user()
    html = admin_browser.get(f"/admin/users/{user.id}").get_data(as_text=True)
    assert "Files and caches" in html and "No files or caches" in html
    assert "0 B of 2.0 GiB" in html  # the default quota


# The admin API


def test_api_lists_a_users_resources(client, admin_headers, ada, upstream, app):
    response = client.get(f"/admin/api/users/{ada.id}/resources", headers=admin_headers)
    assert response.status_code == 200
    body = response.get_json()
    document = build_openapi(app)
    components = {"schemas": {name: closed(schema) for name, schema in document["components"]["schemas"].items()}}
    Draft202012Validator({"$ref": "#/components/schemas/UserResources", "components": components}).validate(body)
    assert body["storage"] == {"used_bytes": 1536 + 2048 + 4096, "quota_bytes": QUOTA}
    by_name = {item["name"]: item for item in body["resources"]}
    assert {name: item["state"] for name, item in by_name.items()} == EXPECTED_STATES
    live = by_name["files/live"]
    assert (live["kind"], live["size_bytes"], live["mime_type"], live["display_name"]) == (
        "file", 1536, "image/png", "<b>cat</b>.png")
    assert (live["upstream_key_id"], live["upstream_key"], live["upstream_key_label"]) == (
        upstream["active"].id, "AIza…0001", "project alpha")
    assert live["api_key_prefix"] == ada.api_keys[0].prefix
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z", live["created_at"]) and live["expires_at"].endswith("Z")
    assert by_name["cachedContents/old"]["token_count"] == 4321 and by_name["cachedContents/old"]["kind"] == "cache"
    assert by_name["files/gone"]["deleted_at"] is not None
    assert by_name["files/lost"]["api_key_prefix"] is None
    assert "bobs-secret" not in response.get_data(as_text=True)
    assert not any(secret in response.get_data(as_text=True) for secret in SECRETS.values())


def test_api_lists_nothing_for_a_user_without_resources(client, admin_headers, make_user):
    user = make_user()
    body = client.get(f"/admin/api/users/{user.id}/resources", headers=admin_headers).get_json()
    assert body["resources"] == [] and body["storage"]["used_bytes"] == 0


def test_api_resources_of_an_unknown_user_are_404(client, admin_headers):
    response = client.get("/admin/api/users/9999/resources", headers=admin_headers)
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"


def test_api_resources_are_for_admins_only(client, ada, auth_headers):
    path = f"/admin/api/users/{ada.id}/resources"
    assert client.get(path).status_code == 401
    refused = client.get(path, headers=auth_headers(ada))
    assert refused.status_code == 403 and "files/live" not in refused.get_data(as_text=True)


def test_the_resources_route_is_documented(app):
    operation = build_openapi(app)["paths"]["/admin/api/users/{user_id}/resources"]["get"]
    assert operation["operationId"] == "listUserResources"
    assert {"200", "401", "403", "404"} <= operation["responses"].keys()


def test_upstream_keys_api_counts_what_each_key_holds(client, admin_headers, ada, upstream):
    listed = client.get("/admin/api/upstream-keys?include_deleted=1", headers=admin_headers).get_json()["upstream_keys"]
    held = {key["id"]: key["resources_held"] for key in listed}
    # Live resources only: ada's live file and bob's file on the active key.
    assert held == {upstream["active"].id: 2, upstream["disabled"].id: 1, upstream["deleted"].id: 1}
    patched = client.patch(f"/admin/api/upstream-keys/{upstream['active'].id}", json={"state": "disabled"},
                           headers=admin_headers).get_json()
    assert patched["state"] == "disabled" and patched["resources_held"] == 2
    states = {item["name"]: item["state"] for item in client.get(
        f"/admin/api/users/{ada.id}/resources", headers=admin_headers).get_json()["resources"]}
    assert states["files/live"] == "key_disabled"


# The pool page


def pool_row(html: str, masked: str) -> str:
    """The pool table's row of the key shown as `masked`, tags removed from its holdings cell."""
    row = next(row for row in table_rows(html, "pool-table") if masked in row)
    return re.sub(r"<span[^>]*>([^<]*)</span>", r"\1", row)


def test_pool_page_shows_what_each_key_holds_and_warns_before_cutting_it_off(admin_browser, ada, upstream):
    html = admin_browser.get("/admin/keys").get_data(as_text=True)
    active, disabled = pool_row(html, "AIza…0001"), pool_row(html, "AIza…0002")
    assert "2 live" in active and "files/live · ada@example.com" in active
    assert "files/bobs-secret · bob@example.com" in active
    assert "unreachable while disabled" not in active
    disable = re.search(r'action="/admin/keys/\d+/state" data-confirm="([^"]*)"', active).group(1)
    assert "answer 409 until it is enabled again" in disable and "files/live (ada@example.com)" in disable
    delete = re.search(r'action="/admin/keys/\d+/delete" data-confirm="([^"]*)"', active).group(1)
    assert "2 file(s) and cached content(s) it holds become unreachable for good" in delete
    assert "files/live (ada@example.com), files/bobs-secret (bob@example.com)" in delete
    assert "1 live" in disabled and "unreachable while disabled" in disabled and "files/paused" in disabled
    assert "files/gone" not in html and "cachedContents/old" not in html  # deleted and expired hold nothing
    assert not any(secret in html for secret in SECRETS.values())


def test_a_key_without_resources_deletes_without_a_warning(admin_browser, app):
    pool.add_upstream_key(db.session, "AIzaLonelyKey-0009", runtime().secret_box)
    db.session.commit()
    row = pool_row(admin_browser.get("/admin/keys").get_data(as_text=True), "AIza…0009")
    assert "none" in row and 'data-confirm="Remove AIza…0009 from the pool for good?"' in row
    assert "/state\" data-confirm" not in row


def test_disabling_and_deleting_say_what_became_unreachable(admin_browser, ada, upstream):
    token = csrf_token(admin_browser, "/admin/keys")
    key_id = upstream["active"].id
    disabled = admin_browser.post(f"/admin/keys/{key_id}/state", data={"csrf_token": token, "value": "off"},
                                  follow_redirects=True).get_data(as_text=True)
    assert "is now disabled. 2 file(s) and cached content(s) it holds answer 409" in disabled
    assert "files/live (ada@example.com)" in disabled
    removed = admin_browser.post(f"/admin/keys/{key_id}/delete", data={"csrf_token": token},
                                 follow_redirects=True).get_data(as_text=True)
    assert "was removed from the pool. 2 file(s) and cached content(s) it holds become unreachable for good" \
        in removed
    assert "files/bobs-secret (bob@example.com)" in removed


# Revoking a Vault key (dashboard)


def revoke_confirmations(html: str) -> dict[str, str]:
    """The revoke confirmation of each key, by key name."""
    found = re.findall(r'data-confirm="Revoke ([^?]+)\? ([^"]*)"', html)
    return dict(found)


def test_revoke_confirmation_says_what_happens_to_the_files(app, make_user, make_api_key, upstream):
    user = make_user(email="cy@example.com")
    laptop, ci = make_api_key(user, "laptop").record, make_api_key(user, "ci").record
    add_resource(user, "files/a", upstream["active"], laptop, size_bytes=10)
    add_resource(user, "files/b", upstream["active"], laptop, size_bytes=10)
    add_resource(user, "files/old", upstream["active"], laptop, deleted_at=utcnow())
    browser = app.test_client()
    log_in(browser, "cy@example.com")
    notes = revoke_confirmations(browser.get("/dashboard").get_data(as_text=True))
    assert notes["laptop"].endswith("The 2 file(s) and cached content(s) made with it stay usable with your other "
                                    "keys.")
    assert notes["ci"] == "Anything using it stops working at once."
    token = csrf_token(browser, "/dashboard")
    browser.post(f"/dashboard/keys/{ci.id}/revoke", data={"csrf_token": token})
    notes = revoke_confirmations(browser.get("/dashboard").get_data(as_text=True))
    assert set(notes) == {"laptop"}
    assert "It is your only active key: your 2 file(s) and cached content(s) cannot be used until you create " \
           "another key." in notes["laptop"]


# The plain functions


@pytest.mark.parametrize(("size", "text"), [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"),
                                            (5 * 1024**2, "5.0 MiB"), (20 * 1024**3, "20.0 GiB"),
                                            (3 * 1024**6, "3072.0 PiB")])
def test_human_size(size, text):
    assert summary.human_size(size) == text


@pytest.mark.parametrize(("made", "owned", "others", "note"), [
    (0, 0, True, ""),
    (0, 0, False, ""),
    (0, 3, True, ""),
    (2, 3, True, "The 2 file(s) and cached content(s) made with it stay usable with your other keys."),
    (2, 3, False, "It is your only active key: your 3 file(s) and cached content(s) cannot be used until you "
                  "create another key."),
    (0, 3, False, "It is your only active key: your 3 file(s) and cached content(s) cannot be used until you "
                  "create another key."),
])
def test_revoke_note(made, owned, others, note):
    assert summary.revoke_note(made, owned, others) == note


def test_storage_share():
    assert summary.Storage(0, 0).percent == 0 and summary.Storage(1, 0).percent == 100
    assert summary.Storage(5, 10).percent == 50 and summary.Storage(20, 10).percent == 100


def test_holdings_listing_names_the_rest():
    held = summary.Holdings(5, [("files/a", "a@example.com"), ("files/b", "b@example.com")])
    assert held.listing == "files/a (a@example.com), files/b (b@example.com) and 3 more"
    assert summary.Holdings().delete_warning == "" and summary.Holdings().disable_warning == ""
