"""A key's own "Check" button is audited like a check job: `pool.check`, the key, its result, who and from where."""

import pytest

from tests.test_pages import csrf_token, log_in
from vault import pool
from vault.extensions import db
from vault.models import AuditEntry
from vault.runtime import runtime

IP = "203.0.113.9"


@pytest.fixture
def browser(app, admin, fake_gemini):
    """The admin signed in to the pages, from `IP`, the upstream the fake one."""
    app.config["GEMINI_BASE_URL"] = runtime().upstream.base_url = fake_gemini.base_url
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = IP
    log_in(client, admin.email)
    return client


@pytest.mark.parametrize("valid, result", [(True, "ok"), (False, "invalid")])
def test_checking_one_key_is_audited_with_its_result(browser, admin, fake_gemini, valid, result):
    secret = fake_gemini.new_key()
    if not valid:
        fake_gemini.remove_key(secret)
    key = pool.add_upstream_key(db.session, secret, runtime().secret_box).key
    db.session.commit()
    runtime().health.refresh(force=True)
    token = csrf_token(browser, "/admin/keys")
    answer = browser.post(f"/admin/keys/{key.id}/check", data={"csrf_token": token})
    assert answer.status_code == 302
    db.session.expire_all()
    (entry,) = db.session.scalars(db.select(AuditEntry)).all()
    assert (entry.action, entry.target, entry.before, entry.after) == (
        "pool.check", f"upstream_key:{key.id}", None, {"ids": [key.id], "result": result})
    assert (entry.actor_id, entry.actor_email, entry.ip) == (admin.id, admin.email, IP)


def test_a_refused_check_leaves_no_entry(browser):
    key = pool.add_upstream_key(db.session, "AIzaSy-check-audit-no-token-0001", runtime().secret_box).key
    db.session.commit()
    assert browser.post(f"/admin/keys/{key.id}/check", data={}).status_code == 400, "no CSRF token"
    assert browser.post("/admin/keys/999999/check", data={"csrf_token": csrf_token(browser, "/admin/keys")}
                        ).status_code == 404
    assert db.session.scalars(db.select(AuditEntry)).all() == []
