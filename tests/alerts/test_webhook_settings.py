"""The alert webhook's settings: a URL `urlsplit` cannot take is a 400 (never a 500), the signing secret is
never half shown, and a webhook no listed key opens reads as none instead of failing the page or the monitor."""

import json
import logging

import pytest
from cryptography.fernet import Fernet

from tests.test_pages import csrf_token, log_in
from vault.alerts import settings
from vault.extensions import db
from vault.models import AlertEvent, AlertSettings, AuditEntry
from vault.runtime import runtime
from vault.security import SecretBox, mask_signing_secret


@pytest.mark.parametrize("url", ["http://[::1/hook", "http://example.com:99999/hook", "https://example.com:0x50/",
                                 "http://example.com:0/", "http://exa mple.com/", "http://example.com/\nhook"])
def test_an_unparseable_webhook_url_is_a_400(client, admin_headers, url):
    answer = client.put("/admin/api/alerts/webhook", headers=admin_headers,
                        json={"url": url, "secret": "review15-signing-secret"})
    assert answer.status_code == 400, answer.get_data(as_text=True)[:300]
    assert db.session.scalar(db.select(db.func.count()).select_from(AlertSettings)) == 0
    assert client.get("/admin/api/alerts", headers=admin_headers).status_code == 200


def test_the_page_refuses_an_unparseable_webhook_url_with_a_400(client, admin):
    log_in(client, admin.email)
    token = csrf_token(client, "/admin/alerts")
    answer = client.post("/admin/alerts/webhook", data={"csrf_token": token, "url": "http://example.com:99999/",
                                                        "secret": "review15-signing-secret"})
    assert answer.status_code == 400, answer.status_code


def test_a_url_with_a_port_is_kept_and_shown_with_it(client, admin_headers):
    assert client.put("/admin/api/alerts/webhook", headers=admin_headers,
                      json={"url": "https://[::1]:8443/hooks/vault", "secret": "s" * 16}).status_code == 200
    assert client.get("/admin/api/alerts", headers=admin_headers).get_json()["webhook"]["url"] \
        .startswith("https://::1:8443/")


def test_the_masked_secret_does_not_reveal_half_of_it(client, admin, admin_headers):
    """`mask_secret` shows the first and last four characters: fine for a 39-character API key, but the
    webhook secret may be 16 characters, so the API, the page and every audit entry showed half of it."""
    secret = "Kq7vX2mP9wR4tY6z"  # 16 characters, the minimum
    assert client.put("/admin/api/alerts/webhook", headers=admin_headers,
                      json={"url": "https://hooks.example.com/vault", "secret": secret}).status_code == 200
    shown = client.get("/admin/api/alerts", headers=admin_headers).get_json()
    entry = db.session.scalars(db.select(AuditEntry).where(AuditEntry.action == "alerts.webhook")).one()
    log_in(client, admin.email)
    page = client.get("/admin/alerts").get_data(as_text=True)
    for where, text in (("the API", json.dumps(shown, ensure_ascii=False)), ("the audit entry", repr(entry.after)),
                        ("the page", page)):
        revealed = [part for part in (secret[:4], secret[-4:]) if part in text]
        assert not revealed, f"{where} shows {4 * len(revealed)} of the 16 characters of the secret: {revealed}"
        assert "…6z (16 characters)" in text


@pytest.mark.parametrize("secret, masked", [("Kq7vX2mP9wR4tY6z", "…6z (16 characters)"),
                                            ("a" * 40 + "XY", "…XY (42 characters)"), ("short", "… (5 characters)")])
def test_mask_signing_secret(secret, masked):
    assert mask_signing_secret(secret) == masked


def test_a_webhook_no_key_opens_reads_as_none_and_alerts_are_still_raised(client, admin_headers, make_user, caplog):
    other = SecretBox(Fernet.generate_key().decode())
    db.session.add(AlertSettings(webhook_url_encrypted=other.encrypt("https://hooks.example.com/vault"),
                                 webhook_secret_encrypted=other.encrypt("s" * 16)))
    make_user(balance="0.10", low_balance_threshold_nano=10**9)
    db.session.commit()
    with caplog.at_level(logging.ERROR, logger="vault.alerts.settings"):
        assert settings.webhook(settings.load(db.session), runtime().secret_box) is None
        runtime().alerts.run_once()
    assert "cannot be decrypted" in caplog.text
    assert [(event.kind, event.state) for event in db.session.scalars(db.select(AlertEvent))] == \
        [("low_balance", "none")]
    shown = client.get("/admin/api/alerts", headers=admin_headers)
    assert shown.status_code == 200 and shown.get_json()["webhook"] is None


def test_a_stored_url_urlsplit_cannot_take_is_still_shown_masked():
    """Rows saved before `check_url` read the port: the page must not fail on them."""
    assert settings.masked_url("http://example.com:99999/hook-token") == "http…oken"
    assert settings.masked_url("http://[::1/hook") == "http…hook"
