"""The dashboard's key limits: each key's standing and policy, and the owner's edit form (CSRF,
validation and escalation errors next to their field, never a 500)."""

import re
from datetime import UTC, datetime

import pytest

from tests.test_pages import csrf_token, log_in
from vault.billing.money import usd_to_nano
from vault.extensions import db
from vault.models import ApiKey, User
from vault.runtime import runtime

FULL_FORM = {"expires_at": "2030-01-02T03:04", "allowed_models": "gemini-2.5-flash*, gemini-2.5-pro",
             "spend_cap": "2.50", "spend_cap_period": "week", "rate_limit_rpm": "30", "rate_limit_tpm": "50000",
             "max_concurrency": "3", "allowed_ips": "10.0.0.0/8 2001:db8::/32"}


@pytest.fixture
def browser(app):
    return app.test_client()


@pytest.fixture
def ada(make_user, browser):
    user = make_user(email="ada@example.com")
    log_in(browser, "ada@example.com")
    return user


def policy_of(key_id: int) -> dict:
    db.session.expire_all()
    key = db.session.get(ApiKey, key_id)
    return {name: getattr(key, name) for name in ("expires_at", "allowed_models", "spend_cap_nano", "spend_cap_period",
                                                  "rate_limit_rpm", "rate_limit_tpm", "max_concurrency", "allowed_ips")}


def post_policy(browser, key_id: int, form: dict):
    token = csrf_token(browser, "/dashboard")
    return browser.post(f"/dashboard/keys/{key_id}/policy", data=form | {"csrf_token": token})


def test_each_key_shows_its_policy_and_standing(browser, ada, make_api_key):
    ada.limits = {"spend_cap_nano": usd_to_nano("5"), "spend_cap_period": "day", "visible_models": ["gemini-*"]}
    key = make_api_key(ada, "laptop").record
    key.spend_cap_nano, key.spend_cap_period, key.rate_limit_rpm = usd_to_nano("2"), "day", 60
    key.allowed_models, key.allowed_ips, key.max_concurrency = ["gemini-2.5-flash*"], ["10.0.0.0/8"], 4
    revoked = make_api_key(ada, "old").record
    revoked.revoked_at = datetime.now(UTC)
    db.session.commit()
    page = browser.get("/dashboard").get_data(as_text=True)
    card = page[page.index(f'data-testid="key-policy-{key.id}"'):]
    assert "Spend today" in card and "$0.00 of $2.00" in card
    assert "Requests this minute" in card and "0 of 60" in card
    assert "Tokens this minute" in card and "0 · no limit" in card
    assert "In flight" in card and "0 of 4" in card
    assert "gemini-2.5-flash*" in card and "10.0.0.0/8" in card and "no expiry" in card
    assert "The spend cap resets" in card and "UTC midnight" in card
    assert re.search(r'<meter[^>]*aria-label="Requests this minute: 0 of 60"', card)
    assert f'data-testid="key-policy-{revoked.id}"' not in page, "a revoked key has no limits to show"
    assert "Your account allows: " in page
    assert 'data-testid="account-limits">spend cap $5.00 a day · visible models gemini-*<' in page
    assert 'value="gemini-2.5-flash*"' in card and 'value="2"' in card, "the form holds the current policy"


def test_the_owner_sets_and_clears_every_field(browser, ada, make_api_key):
    key = make_api_key(ada).record
    response = post_policy(browser, key.id, FULL_FORM)
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/dashboard#key-{key.id}")
    assert policy_of(key.id) == {
        "expires_at": datetime(2030, 1, 2, 3, 4, tzinfo=UTC), "allowed_models": ["gemini-2.5-flash*", "gemini-2.5-pro"],
        "spend_cap_nano": usd_to_nano("2.5"), "spend_cap_period": "week", "rate_limit_rpm": 30,
        "rate_limit_tpm": 50_000, "max_concurrency": 3, "allowed_ips": ["10.0.0.0/8", "2001:db8::/32"]}
    assert "Policy of key" in browser.get("/dashboard").get_data(as_text=True)
    assert post_policy(browser, key.id, {}).status_code == 302, "a form sent empty clears every limit"
    assert set(policy_of(key.id).values()) == {None}


@pytest.mark.parametrize(("form", "field", "message"), [
    ({"rate_limit_rpm": "-1"}, "rate_limit_rpm", "Number must be between 0 and 1000000"),
    ({"max_concurrency": "many"}, "max_concurrency", "Not a valid integer value"),
    ({"spend_cap": "lots"}, "spend_cap", "Not a valid decimal value"),
    ({"spend_cap_period": "year"}, "spend_cap_period", "Not a valid choice"),
    ({"expires_at": "soon"}, "expires_at", "Not a valid datetime value"),
    ({"allowed_models": "gemini/2.5"}, "allowed_models", "is not a model pattern"),
    ({"allowed_ips": "10.0.0.0/33"}, "allowed_ips", "is not an IP address or CIDR block"),
    ({"spend_cap": "0.0000000001"}, "spend_cap", "9 decimal places"),
])
def test_bad_values_are_shown_next_to_their_field(browser, ada, make_api_key, db_snapshot, form, field, message):
    key = make_api_key(ada).record
    before = db_snapshot()
    response = post_policy(browser, key.id, form)
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and message in page
    assert f'id="key{key.id}-{field}-error"' in page and 'aria-invalid="true"' in page
    assert re.search(r'<details[^>]*open>\s*<summary[^>]*>Edit policy<span class="sr-only"> of', page)
    assert db_snapshot() == before


@pytest.mark.parametrize(("limits", "form", "field"), [
    ({"spend_cap_nano": usd_to_nano("5"), "spend_cap_period": "day"}, {"spend_cap": "6", "spend_cap_period": "day"},
     "spend_cap"),
    ({"spend_cap_nano": usd_to_nano("5"), "spend_cap_period": "day"}, {"spend_cap": "1", "spend_cap_period": "month"},
     "spend_cap_period"),
    ({"rate_limit_rpm": 60}, {"rate_limit_rpm": "0"}, "rate_limit_rpm"),
    ({"rate_limit_tpm": 100}, {"rate_limit_tpm": "101"}, "rate_limit_tpm"),
    ({"max_concurrency": 1}, {"max_concurrency": "2"}, "max_concurrency"),
    ({"allowed_models": ["gemini-2.5-*"]}, {"allowed_models": "gemini-3*"}, "allowed_models"),
    ({"allowed_ips": ["10.0.0.0/8"]}, {"allowed_ips": "10.0.0.0/7"}, "allowed_ips"),
])
def test_escalations_are_refused_in_the_form(browser, ada, make_api_key, db_snapshot, limits, form, field):
    ada.limits = limits
    db.session.commit()
    key = make_api_key(ada).record
    before = db_snapshot()
    response = post_policy(browser, key.id, form)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    error = re.search(rf'id="key{key.id}-{field}-error"[^>]*>([^<]+)<', page)
    assert error and ("at most" in error[1] or "outside" in error[1] or "period" in error[1]), error
    assert db_snapshot() == before


def test_the_global_default_caps_the_owners_requests_per_minute(browser, ada, make_api_key, monkeypatch):
    monkeypatch.setattr(runtime(), "default_rpm", 20)
    key = make_api_key(ada).record
    assert post_policy(browser, key.id, {"rate_limit_rpm": "21"}).status_code == 400
    assert 'placeholder="20 (default)"' in browser.get("/dashboard").get_data(as_text=True)
    assert post_policy(browser, key.id, {"rate_limit_rpm": "20"}).status_code == 302


def test_someone_elses_or_a_revoked_key_is_refused(browser, ada, make_user, make_api_key, db_snapshot):
    other = make_api_key(make_user()).record
    revoked = make_api_key(ada).record
    revoked.revoked_at = datetime.now(UTC)
    db.session.commit()
    before = db_snapshot()
    assert post_policy(browser, other.id, {"rate_limit_rpm": "5"}).status_code == 404
    assert post_policy(browser, revoked.id, {"rate_limit_rpm": "5"}).status_code == 409
    assert browser.post(f"/dashboard/keys/{other.id}/policy", data={"rate_limit_rpm": "5"}).status_code == 400
    assert db_snapshot() == before
    db.session.expire_all()
    assert db.session.get(User, ada.id).limits is None
