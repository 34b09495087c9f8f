"""Alerts end to end: raised once per crossing, signed, delivered with retries, logged, never in the
proxy's way; and the admin API and page that configure them."""

import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.alerts.receivers import Smtp, Webhook, closed_port
from tests.test_pages import csrf_token, log_in
from vault.alerts import SmtpSettings, raising, settings, signing
from vault.alerts.delivery import DeliveryPolicy
from vault.clock import utcnow
from vault.extensions import db
from vault.models import AlertEvent, AuditEntry, UpstreamKey, User
from vault.runtime import runtime

GENERATE = "/v1beta/models/gemini-2.5-flash:generateContent"
PROMPT = {"contents": [{"role": "user", "parts": [{"text": "Say hi"}]}]}
SECRET = "s3cret-signing-key-0123"


def verify_signature(secret: str, body: bytes, header: str, tolerance: int = 300) -> bool:
    """The README's recipe, verbatim."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    timestamp, expected = fields["t"], fields["v1"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac, expected)


@pytest.fixture
def receiver():
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture
def alerts(app):
    monitor = runtime().alerts
    yield monitor
    monitor.close()


def set_webhook(client, headers, url: str, secret: str = SECRET):
    return client.put("/admin/api/alerts/webhook", json={"url": url, "secret": secret}, headers=headers)


def call(client, key: str) -> int:
    return client.post(GENERATE, json=PROMPT, headers={"x-goog-api-key": key}).status_code


def events(kind: str | None = None) -> list[AlertEvent]:
    db.session.expire_all()
    query = select(AlertEvent).order_by(AlertEvent.id)
    return list(db.session.scalars(query.where(AlertEvent.kind == kind) if kind else query))


def test_the_signature_verifies_with_the_documented_recipe():
    body = b'{"type":"low_balance"}'
    header = signing.signature(SECRET, body, int(time.time()))
    assert verify_signature(SECRET, body, header)
    assert signing.verify(SECRET, body, header, time.time())
    assert not verify_signature(SECRET, body + b" ", header)
    assert not verify_signature("another-secret-0123456", body, header)
    old = signing.signature(SECRET, body, int(time.time()) - 3600)
    assert not verify_signature(SECRET, body, old) and not signing.verify(SECRET, body, old, time.time())


def test_low_balance_is_sent_once_per_crossing_and_rearmed_by_a_top_up(
        client, proxied_key, receiver, alerts, admin_headers):
    key = proxied_key(balance="100.00")
    user_id = key.record.user_id
    assert set_webhook(client, admin_headers, receiver.url).status_code == 200
    patched = client.patch(f"/admin/api/users/{user_id}", json={"low_balance_threshold": "99.999999999"},
                           headers=admin_headers)
    assert patched.status_code == 200 and patched.get_json()["low_balance_threshold"] == 99.999999999

    alerts.run_once()
    assert receiver.received == []  # at $100.00 nobody is below $99.999999999
    assert call(client, key.plaintext) == 200
    alerts.run_once(full=False)  # the settlement's note alone raises it
    assert call(client, key.plaintext) == 200
    alerts.run_once()
    assert [event.kind for event in events()] == ["low_balance"]
    headers, body = receiver.received[0]
    assert verify_signature(SECRET, body, headers["X-GV-Signature"])
    payload = json.loads(body)
    user = db.session.get(User, user_id)
    assert payload["type"] == "low_balance" and payload["user"] == {"id": user_id, "email": user.email}
    assert payload["balance"] < 99.999999999 and payload["threshold"] == 99.999999999
    assert events()[0].state == "delivered" and events()[0].attempts == 1

    topped = client.patch(f"/admin/api/users/{user_id}", json={"balance_delta": "5", "reason": "top-up"},
                          headers=admin_headers)
    assert topped.status_code == 200
    alerts.run_once()
    db.session.expire_all()
    assert db.session.get(User, user_id).low_balance_alerted_at is None  # re-armed
    assert call(client, key.plaintext) == 200
    alerts.run_once()
    assert [event.kind for event in events()] == ["low_balance"]  # still above after one call
    client.patch(f"/admin/api/users/{user_id}", json={"balance_delta": "-5", "reason": "refund"}, headers=admin_headers)
    alerts.run_once()
    assert [event.kind for event in events()] == ["low_balance", "low_balance"] and len(receiver.received) == 2
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "user.low_balance_threshold")).one()
    assert entry.after == {"low_balance_threshold": 99.999999999} and entry.target == f"user:{user_id}"


def test_a_disabled_key_and_a_thin_pool_alert_once(client, proxied_key, receiver, alerts, admin_headers):
    proxied_key()
    assert set_webhook(client, admin_headers, receiver.url).status_code == 200
    assert client.put("/admin/api/alerts/settings", json={"min_usable_keys": 1},
                      headers=admin_headers).status_code == 200
    alerts.run_once()
    assert events() == []
    key_id = db.session.scalar(select(UpstreamKey.id))
    answer = client.patch(f"/admin/api/upstream-keys/{key_id}", json={"state": "disabled"}, headers=admin_headers)
    assert answer.status_code == 200
    alerts.run_once(full=False)
    alerts.run_once()  # a later scan does not raise pool_low again
    assert sorted(event.kind for event in events()) == ["key_disabled", "pool_low"]
    bodies = {json.loads(body)["type"]: json.loads(body) for _, body in receiver.received}
    assert bodies["key_disabled"]["key"]["id"] == key_id and "admin" in bodies["key_disabled"]["reason"]
    assert bodies["pool_low"]["usable_keys"] == 0 and bodies["pool_low"]["min_usable_keys"] == 1
    assert client.patch(f"/admin/api/upstream-keys/{key_id}", json={"state": "active"},
                        headers=admin_headers).status_code == 200
    alerts.run_once()  # recovered: re-armed
    client.patch(f"/admin/api/upstream-keys/{key_id}", json={"state": "disabled"}, headers=admin_headers)
    alerts.run_once()
    assert sorted(event.kind for event in events()) == ["key_disabled", "key_disabled", "pool_low", "pool_low"]


def test_a_key_disabled_by_its_traffic_alerts(client, proxied_key, fake_gemini, receiver, alerts, admin_headers):
    key = proxied_key()
    assert set_webhook(client, admin_headers, receiver.url).status_code == 200
    upstream = db.session.scalar(select(UpstreamKey))
    fake_gemini.remove_key(runtime().secret_box.decrypt(upstream.secret_encrypted))
    call(client, key.plaintext)
    alerts.run_once(full=False)
    kinds = [event.kind for event in events()]
    assert kinds == ["key_disabled"]
    assert "rejected by the upstream" in events()[0].payload["reason"]


def test_failed_deliveries_are_retried_with_backoff_then_marked_failed(app, make_user, receiver, alerts):
    now = utcnow()
    alerts.clock = lambda: now
    alerts.policy = DeliveryPolicy(max_attempts=3, retry_base=10, timeout=2)
    settings.set_webhook(db.session, runtime().secret_box, receiver.url, SECRET)
    make_user(balance="0.50", low_balance_threshold_nano=10**9)
    receiver.statuses = [500, 200]
    alerts.run_once()
    (event,) = events()
    assert (event.state, event.attempts, event.last_status) == ("pending", 1, 500)
    assert event.next_attempt_at == now + timedelta(seconds=10)
    alerts.deliver_due()  # not due yet: no attempt
    assert len(receiver.received) == 1
    now += timedelta(seconds=10)
    alerts.deliver_due()
    (event,) = events()
    assert (event.state, event.attempts, event.last_status, len(receiver.received)) == ("delivered", 2, 200, 2)
    assert receiver.received[0][1] == receiver.received[1][1]  # the same body, signed anew

    receiver.statuses = [500, 503, 500]
    make_user(balance="0.10", low_balance_threshold_nano=10**9)
    waits = []
    for _ in range(3):
        alerts.run_once()
        failing = events()[-1]
        if failing.next_attempt_at:
            waits.append((failing.next_attempt_at - now).total_seconds())
            now = failing.next_attempt_at
    assert waits == [10, 20]  # doubled each time
    assert (failing.state, failing.attempts, failing.last_error) == ("failed", 3, "HTTP 500")
    alerts.deliver_due()
    assert events()[-1].attempts == 3  # never tried again


def test_an_unreachable_webhook_is_logged_as_such(app, make_user, alerts):
    settings.set_webhook(db.session, runtime().secret_box, f"http://127.0.0.1:{closed_port()}/", SECRET)
    make_user(balance="0.10", low_balance_threshold_nano=10**9)
    alerts.run_once()
    (event,) = events()
    assert event.state == "pending" and event.last_status is None and "could not reach" in event.last_error


def test_two_workers_never_send_the_same_event(app, make_user, receiver, alerts):
    settings.set_webhook(db.session, runtime().secret_box, receiver.url, SECRET)
    make_user(balance="0.10", low_balance_threshold_nano=10**9)
    alerts.raise_due()
    from vault.alerts import delivery

    now = utcnow()
    with runtime().session_factory() as first, runtime().session_factory() as second:
        claimed = delivery.claim_due(first, now, alerts.policy) + delivery.claim_due(second, now, alerts.policy)
    assert len(claimed) == 1


def test_alerts_are_emailed_through_smtp(app, make_user, alerts):
    server = Smtp()
    try:
        alerts.smtp = SmtpSettings("127.0.0.1", server.port, sender="vault@example.com", starttls=False)
        settings.set_thresholds(db.session, None, "ops@example.com")
        db.session.commit()
        make_user(email="low@example.com", balance="0.25", low_balance_threshold_nano=10**9)
        alerts.run_once()
        (event,) = events()
        assert event.state == "none" and event.email_state == "sent"
        (sender, recipients, data) = server.messages[0]
        assert recipients == ["<ops@example.com>"] and "vault@example.com" in sender
        assert b"low@example.com is below their threshold" in data
    finally:
        server.close()


def test_a_webhook_saved_while_a_round_scans_still_gets_the_alert(client, admin_headers, receiver, make_user, alerts,
                                                                  monkeypatch):
    # The round read "no webhook", then the admin saved one, then the scan saw the balance below its
    # threshold: the alert must go to the webhook that existed before the crossing was seen.
    make_user(balance="0.10", low_balance_threshold_nano=10**9)
    rearm = raising.rearm_low_balances

    def save_webhook_meanwhile(session):
        assert set_webhook(client, admin_headers, receiver.url).status_code == 200
        rearm(session)

    monkeypatch.setattr(raising, "rearm_low_balances", save_webhook_meanwhile)
    alerts.run_once()
    assert [(event.kind, event.state, event.attempts) for event in events()] == [("low_balance", "delivered", 1)]
    assert len(receiver.received) == 1


def test_a_hanging_or_dead_webhook_never_slows_a_proxied_request(client, proxied_key, admin_headers, alerts):
    hanging = Webhook(hang=True)
    try:
        alerts.interval, alerts.policy = 0.2, DeliveryPolicy(timeout=3)
        key = proxied_key(balance="100.00")
        user_id = key.record.user_id
        assert set_webhook(client, admin_headers, hanging.url).status_code == 200
        client.patch(f"/admin/api/users/{user_id}", json={"low_balance_threshold": "500"}, headers=admin_headers)
        assert call(client, key.plaintext) == 200  # starts the monitor, which raises the alert and POSTs it
        assert hanging.arrived.wait(30)  # the monitor runs beside the requests: a loaded machine delays it
        started = time.monotonic()
        for _ in range(5):
            assert call(client, key.plaintext) == 200
        assert time.monotonic() - started < 2.5  # the receiver is still hanging meanwhile
        assert not hanging.release.is_set()
        set_webhook(client, admin_headers, f"http://127.0.0.1:{closed_port()}/")
        started = time.monotonic()
        for _ in range(5):
            assert call(client, key.plaintext) == 200
        assert time.monotonic() - started < 2.5
    finally:
        alerts.close()
        hanging.close()


def test_the_alerts_api_shows_settings_masked_and_events(client, admin_headers, receiver, make_user, alerts):
    assert set_webhook(client, admin_headers, receiver.url + "?token=abcdefghijkl").status_code == 200
    make_user(balance="0.10", low_balance_threshold_nano=10**9)
    alerts.run_once()
    shown = client.get("/admin/api/alerts", headers=admin_headers).get_json()
    assert SECRET not in json.dumps(shown) and "abcdefghijkl" not in json.dumps(shown)
    assert shown["webhook"]["url"].startswith("http://127.0.0.1:")
    assert [(e["type"], e["state"], e["attempts"]) for e in shown["events"]] == [("low_balance", "delivered", 1)]
    stored = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "alerts.webhook")).one()
    assert SECRET not in json.dumps(stored.after) and stored.after["webhook_secret"] == "…23 (23 characters)"
    assert client.get("/admin/api/alerts?type=low_balance", headers=admin_headers).status_code == 200


@pytest.mark.parametrize("body, field", [
    ({"url": "ftp://example.com/x", "secret": SECRET}, "url"),
    ({"url": "http:///nohost", "secret": SECRET}, "url"),
    ({"url": "https://example.com/x", "secret": "short"}, "secret"),
    ({"url": "https://example.com/x"}, "secret"),
    ({"url": "https://example.com/x", "secret": SECRET, "extra": 1}, "extra"),
    ({"secret": SECRET}, "url"),
    ({"url": 5, "secret": SECRET}, "url"),
])
def test_a_bad_webhook_is_a_400_and_changes_nothing(client, admin_headers, body, field):
    answer = client.put("/admin/api/alerts/webhook", json=body, headers=admin_headers)
    assert answer.status_code == 400 and field in json.dumps(answer.get_json())
    assert settings.load(db.session) is None or settings.load(db.session).webhook_url_encrypted is None


@pytest.mark.parametrize("path, body", [
    ("/admin/api/alerts/settings", {"min_usable_keys": 0}),
    ("/admin/api/alerts/settings", {"email_to": "not-an-email"}),
    ("/admin/api/alerts/settings", {"min_usable_keys": "3"}),
    ("/admin/api/users/{id}", {"low_balance_threshold": -1}),
    ("/admin/api/users/{id}", {"low_balance_threshold": "lots"}),
])
def test_bad_alert_settings_are_a_400(client, admin, admin_headers, path, body):
    method = client.put if path.endswith("settings") else client.patch
    assert method(path.format(id=admin.id), json=body, headers=admin_headers).status_code == 400
    assert client.get("/admin/api/alerts?limit=0", headers=admin_headers).status_code == 400
    assert client.get("/admin/api/alerts?type=nope", headers=admin_headers).status_code == 400


def test_only_admins_see_or_change_alerts(client, make_user, auth_headers):
    headers = auth_headers(make_user())
    assert client.get("/admin/api/alerts", headers=headers).status_code == 403
    assert client.put("/admin/api/alerts/webhook", json={"url": "https://x.example/", "secret": SECRET},
                      headers=headers).status_code == 403
    assert client.get("/admin/api/alerts").status_code == 401
    assert client.get("/admin/alerts").status_code == 302


def test_the_alerts_page_saves_with_csrf_and_shows_the_log(client, admin, make_user, receiver, alerts):
    log_in(client, admin.email)
    assert client.post("/admin/alerts/webhook", data={"url": receiver.url, "secret": SECRET}).status_code == 400
    token = csrf_token(client, "/admin/alerts")
    bad = client.post("/admin/alerts/webhook", data={"url": "gopher://x", "secret": SECRET, "csrf_token": token})
    assert bad.status_code == 400 and b"http:// or https://" in bad.data
    saved = client.post("/admin/alerts/webhook", data={"url": receiver.url, "secret": SECRET, "csrf_token": token})
    assert saved.status_code == 302
    token = csrf_token(client, "/admin/alerts")
    assert client.post("/admin/alerts/settings", data={"min_usable_keys": "2", "email_to": "",
                                                       "csrf_token": token}).status_code == 302
    make_user(email="poor@example.com", balance="0.10", low_balance_threshold_nano=10**9)
    alerts.run_once()
    page = client.get("/admin/alerts").get_data(as_text=True)
    assert "poor@example.com is below their threshold" in page and "delivered" in page and SECRET not in page
    assert "pool_low" in page  # no keys at all: fewer than 2 usable
    assert "poor@example.com" in client.get("/admin/").get_data(as_text=True)
    actions = set(db.session.scalars(select(AuditEntry.action)))
    assert {"alerts.webhook", "alerts.settings"} <= actions
    token = csrf_token(client, "/admin/alerts")
    assert client.post("/admin/alerts/webhook/remove", data={"csrf_token": token}).status_code == 302
    assert settings.webhook(settings.load(db.session), runtime().secret_box) is None
