"""`upstream reencrypt` moves every stored secret to the first key -- the pool, the alert webhook and the
upstream URL of each open upload -- so that nothing breaks when the old key is dropped (README: Rotating the
encryption key)."""

import uuid
from datetime import timedelta

from cryptography.fernet import Fernet

from vault.clock import utcnow
from vault.extensions import db
from vault.models import AlertSettings, UploadSession
from vault.pool.encryption import reencrypt_stored
from vault.runtime import runtime
from vault.security import SecretBox

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()
SECRET = "review15-signing-secret-0123"


def test_the_webhook_survives_the_readme_key_rotation(app, restart_app, make_user, auth_headers):
    """README: new key first, restart, `upstream reencrypt`, drop the old key. The pool survives that;
    the alert webhook (encrypted with the same box) must too, or the alerts page and API answer 500
    and the monitor fails every round."""
    admin = make_user(email="root@example.com", is_admin=True)
    with restart_app(OLD) as first:
        client = first.test_client()
        put = client.put("/admin/api/alerts/webhook", headers=auth_headers(admin),
                         json={"url": "https://hooks.example.com/vault", "secret": SECRET})
        assert put.status_code == 200, put.get_json()
    with restart_app(f"{NEW},{OLD}") as second:
        result = second.test_cli_runner().invoke(args=["upstream", "reencrypt"])
        assert result.exit_code == 0, result.output
        assert "Re-encrypted 1 other row(s)" in result.output
    with restart_app(NEW, fingerprint_key=OLD) as third:
        runtime().alerts.run_once()  # the monitor's round: must not fail on the webhook it cannot open
        shown = third.test_client().get("/admin/api/alerts", headers=auth_headers(admin))
        assert shown.status_code == 200, shown.get_data(as_text=True)[:300]
        assert shown.get_json()["webhook"]["url"].startswith("https://hooks.example.com")
        assert shown.get_json()["webhook"]["secret"] == "…23 (28 characters)"


def upload(user_id: int, api_key_id: int, url_token: str, **fields) -> UploadSession:
    """A committed upload session holding `url_token`, open for an hour unless `fields` say otherwise."""
    now = utcnow()
    values = {"expires_at": now + timedelta(hours=1)} | fields
    row = UploadSession(token_hash=uuid.uuid4().hex, user_id=user_id, api_key_id=api_key_id,
                        upstream_url_encrypted=url_token, declared_bytes=10, created_at=now, **values)
    db.session.add(row)
    db.session.commit()
    return row


def test_open_uploads_are_reencrypted_and_ended_ones_left_alone(app, make_user, make_api_key):
    box, url = runtime().secret_box, "https://upload.example.com/session?upload_id=secret-upload"
    user = make_user()
    api_key_id = make_api_key(user).record.id
    live = upload(user.id, api_key_id, box.encrypt(url))
    done = upload(user.id, api_key_id, box.encrypt(url), finished_at=utcnow())
    expired = upload(user.id, api_key_id, box.encrypt(url), expires_at=utcnow() - timedelta(seconds=1))
    ended = {row.id: row.upstream_url_encrypted for row in (done, expired)}
    newer = SecretBox(f"{NEW},{app.config['VAULT_ENCRYPTION_KEY']}")

    report = reencrypt_stored(db.session, newer)
    db.session.commit()
    assert (report.others, report.unreadable) == (1, [])
    assert SecretBox(NEW).decrypt(db.session.get(UploadSession, live.id).upstream_url_encrypted) == url
    assert {row_id: db.session.get(UploadSession, row_id).upstream_url_encrypted for row_id in ended} == ended


def test_reencrypt_names_a_webhook_no_key_opens(app, runner):
    other = SecretBox(Fernet.generate_key().decode())
    db.session.add(AlertSettings(webhook_url_encrypted=other.encrypt("https://hooks.example.com/vault"),
                                 webhook_secret_encrypted=other.encrypt(SECRET)))
    db.session.commit()
    result = runner.invoke(args=["upstream", "reencrypt"])
    assert result.exit_code == 1 and "cannot be decrypted" in result.output and "the alert webhook" in result.output
