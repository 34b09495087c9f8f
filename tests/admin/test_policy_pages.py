"""The admin user page's limits: the user's ceilings and visible models, and each key's policy
(an admin may lift a key above the global default, never above the user's limits)."""

import re

import pytest

from tests.test_pages import csrf_token, log_in
from vault.billing.money import usd_to_nano
from vault.extensions import db
from vault.models import ApiKey, User
from vault.runtime import runtime

LIMITS_FORM = {"visible_models": "gemini-2.5-*, gemini-embedding-*", "allowed_models": "gemini-2.5-flash*",
               "spend_cap": "5", "spend_cap_period": "day", "rate_limit_rpm": "60", "rate_limit_tpm": "100000",
               "max_concurrency": "4", "allowed_ips": "10.0.0.0/8"}


@pytest.fixture
def browser(app, admin):
    client = app.test_client()
    log_in(client, "root@example.com")
    return client


def post(browser, user_id: int, path: str, form: dict):
    return browser.post(f"/admin/users/{user_id}/{path}", data=form | {"csrf_token": csrf_token(browser,
                                                                                                 "/admin/users")})


def stored_limits(user_id: int) -> dict | None:
    db.session.expire_all()
    return db.session.get(User, user_id).limits


def test_the_page_shows_the_limits_form_and_each_active_keys_policy(browser, make_user, make_api_key):
    user = make_user(limits={"rate_limit_rpm": 60, "visible_models": ["gemini-*"]})
    key = make_api_key(user, "ci").record
    key.rate_limit_rpm, key.spend_cap_nano = 100, usd_to_nano("3")
    db.session.commit()
    page = browser.get(f"/admin/users/{user.id}").get_data(as_text=True)
    limits = page[page.index('data-testid="user-limits"'):page.index('aria-labelledby="keys-title"')]
    assert 'id="limits-visible_models"' in limits and 'value="gemini-*"' in limits and 'value="60"' in limits
    assert "Now: 60 requests / minute · visible models gemini-*" in re.sub(r"<[^>]+>", "", limits)
    card = page[page.index(f'data-testid="key-policy-{key.id}"'):]
    assert "0 of 60" in card, "the user's ceiling is what the key gets"
    assert "$0.00 of $3.00" in card and "Spend in all" in card
    assert f'action="/admin/users/{user.id}/keys/{key.id}/limit"' in card


def test_the_admin_sets_and_clears_a_users_limits(browser, make_user, db_snapshot):
    user = make_user()
    response = post(browser, user.id, "limits", LIMITS_FORM)
    assert response.status_code == 302
    assert stored_limits(user.id) == {
        "visible_models": ["gemini-2.5-*", "gemini-embedding-*"], "allowed_models": ["gemini-2.5-flash*"],
        "spend_cap_nano": usd_to_nano("5"), "spend_cap_period": "day", "rate_limit_rpm": 60,
        "rate_limit_tpm": 100_000, "max_concurrency": 4, "allowed_ips": ["10.0.0.0/8"]}
    before = db_snapshot()
    for form, message in (({"allowed_ips": "10.0.0.0/40"}, "not an IP address"),
                          ({"visible_models": "gemini/2.5"}, "not a model pattern"),
                          ({"max_concurrency": "0"}, "Number must be between 1 and 100000")):
        refused = post(browser, user.id, "limits", form)
        assert refused.status_code == 400 and message in refused.get_data(as_text=True)
        assert 'aria-invalid="true"' in refused.get_data(as_text=True)
    assert db_snapshot() == before
    assert post(browser, user.id, "limits", {}).status_code == 302
    assert stored_limits(user.id) is None


def test_the_admin_edits_a_keys_policy_within_the_users_limits(browser, make_user, make_api_key, db_snapshot,
                                                               monkeypatch):
    monkeypatch.setattr(runtime(), "default_rpm", 20)
    user = make_user(limits={"rate_limit_tpm": 1000, "allowed_models": ["gemini-2.5-*"]})
    key = make_api_key(user).record
    path = f"keys/{key.id}/limit"
    lifted = post(browser, user.id, path, {"rate_limit_rpm": "500", "allowed_models": "gemini-2.5-pro"})
    assert lifted.status_code == 302
    db.session.expire_all()
    stored = db.session.get(ApiKey, key.id)
    assert (stored.rate_limit_rpm, stored.allowed_models) == (500, ["gemini-2.5-pro"]), "above the global default"
    before = db_snapshot()
    for form, field in (({"rate_limit_tpm": "1001"}, "rate_limit_tpm"), ({"allowed_models": "*"}, "allowed_models")):
        refused = post(browser, user.id, path, form)
        page = refused.get_data(as_text=True)
        assert refused.status_code == 400 and f'id="key{key.id}-{field}-error"' in page
        assert re.search(r"at most|outside", page)
    assert db_snapshot() == before


def test_a_revoked_or_someone_elses_key_is_refused(browser, admin, make_user, make_api_key, db_snapshot):
    user = make_user()
    key = make_api_key(user).record
    before = db_snapshot()
    assert post(browser, admin.id, f"keys/{key.id}/limit", {"rate_limit_rpm": "5"}).status_code == 404
    assert post(browser, 999_999, "limits", {"rate_limit_rpm": "5"}).status_code == 404
    assert db_snapshot() == before
    key.revoked_at = key.created_at
    db.session.commit()
    assert post(browser, user.id, f"keys/{key.id}/limit", {"rate_limit_rpm": "5"}).status_code == 409
    assert f'data-testid="key-policy-{key.id}"' not in browser.get(f"/admin/users/{user.id}").get_data(as_text=True)
