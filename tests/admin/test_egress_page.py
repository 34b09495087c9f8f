"""The pool page shows each key's proxy masked and lets an admin set and clear it (with CSRF)."""

import pytest

from tests.test_pages import csrf_token, log_in
from vault.extensions import db
from vault.models import UpstreamKey
from vault.pool import add_upstream_key
from vault.runtime import runtime

PROXY = "socks5h://alice:s3cret-pass@proxy.example:1080"


@pytest.fixture
def browser(app, make_user):
    """A test client logged in as an admin."""
    make_user(email="root@example.com", is_admin=True)
    browser = app.test_client()
    log_in(browser, "root@example.com")
    return browser


def test_pool_page_sets_shows_masked_and_clears_a_proxy(browser, db_snapshot):
    key = add_upstream_key(db.session, "AIza" + "E" * 35, runtime().secret_box).key
    db.session.commit()
    token = csrf_token(browser, "/admin/keys")
    assert browser.post(f"/admin/keys/{key.id}/proxy", data={"proxy_url": PROXY}).status_code == 400, "CSRF first"
    saved = browser.post(f"/admin/keys/{key.id}/proxy", data={"proxy_url": PROXY, "csrf_token": token},
                         follow_redirects=True).get_data(as_text=True)
    assert "socks5h://alice:***@proxy.example:1080" in saved and "s3cret-pass" not in saved
    assert runtime().health.proxy_for(key.id) == PROXY
    before = db_snapshot()
    refused = browser.post(f"/admin/keys/{key.id}/proxy", data={"proxy_url": "ftp://x:leaked@h", "csrf_token": token},
                           follow_redirects=True).get_data(as_text=True)
    assert "The scheme must be" in refused and "leaked" not in refused
    assert db_snapshot() == before
    cleared = browser.post(f"/admin/keys/{key.id}/proxy", data={"proxy_url": "", "csrf_token": token},
                           follow_redirects=True).get_data(as_text=True)
    assert "default egress" in cleared
    db.session.expire_all()
    assert db.session.get(UpstreamKey, key.id).proxy_url_encrypted is None
    assert runtime().health.proxy_for(key.id) is None
