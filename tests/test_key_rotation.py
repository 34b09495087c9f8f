"""Rotating VAULT_ENCRYPTION_KEY as the README says: new key first, restart, reencrypt, drop the old key
(into VAULT_FINGERPRINT_KEY), restart -- no key is added twice, a deleted key stays deleted, every key
stays readable."""

import base64
import hashlib
import hmac
from functools import partial

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select

from vault import pool
from vault.config import ConfigError
from vault.extensions import db
from vault.models import UpstreamKey
from vault.pool.encryption import reencrypt_pool
from vault.pool.health import read_snapshot
from vault.runtime import runtime
from vault.security import SecretBox

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()
KEPT = ("AIzaSy-kept-upstream-key-0001", "AIzaSy-kept-upstream-key-0002")
DELETED = "AIzaSy-deleted-upstream-key-0003"


def legacy_fingerprint(first_key: str, secret: str) -> str:
    """How fingerprints were made before: keyed from the first Fernet key."""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"gemini-vault fingerprint").derive(
        base64.urlsafe_b64decode(first_key))
    return hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()


def test_fingerprints_do_not_move_when_a_key_is_put_first():
    assert SecretBox(OLD).fingerprint("x") == legacy_fingerprint(OLD, "x"), "an upgrade changes no fingerprint"
    assert SecretBox(f"{NEW},{OLD}").fingerprint("x") == SecretBox(OLD).fingerprint("x")
    assert SecretBox(NEW, fingerprint_key=OLD).fingerprint("x") == SecretBox(OLD).fingerprint("x")
    assert legacy_fingerprint(NEW, "x") in SecretBox(f"{NEW},{OLD}").fingerprints("x"), \
        "rows fingerprinted under the former first-key rule still match"
    assert SecretBox(NEW, fingerprint_key="a" * 40).fingerprint("x") != SecretBox(NEW).fingerprint("x")


def test_reencrypt_moves_every_token_to_the_first_key():
    old_box, both = SecretBox(OLD), SecretBox(f"{NEW},{OLD}")
    token = both.rotate(old_box.encrypt("AIza-secret"))
    assert SecretBox(NEW).decrypt(token) == "AIza-secret"
    with pytest.raises(ValueError):
        SecretBox(Fernet.generate_key().decode()).rotate(token)


@pytest.fixture
def restart(restart_app):
    """`restart(encryption_keys, fingerprint_key=None)`: a fresh app on the same database, as after a restart;
    bootstrap adds GEMINI_API_KEYS, as every start does. Used as a context manager."""
    return partial(restart_app, VAULT_BOOTSTRAP=True, GEMINI_API_KEYS=(*KEPT, DELETED))


def rows() -> list[tuple[str, str]]:
    db.session.expire_all()
    return [(key.masked, key.state.value) for key in db.session.scalars(select(UpstreamKey).order_by(UpstreamKey.id))]


def readable(box: SecretBox) -> list[str]:
    return sorted(box.decrypt(key.secret_encrypted) for key in pool.list_upstream_keys(db.session))


def test_the_readme_rotation_adds_nothing_and_keeps_every_key(app, restart):
    db.create_all()
    with restart(OLD):
        pool.delete_upstream_key(db.session, pool.find_upstream_key(db.session, rows_id(DELETED)))
        db.session.commit()
        before = rows()
    assert len(before) == 3 and before[2][1] == "deleted"

    with restart(f"{NEW},{OLD}") as app:  # 1. the new key first, restart
        assert rows() == before
        result = app.test_cli_runner().invoke(args=["upstream", "reencrypt"])  # 2.
        assert result.exit_code == 0, result.output
        assert "Re-encrypted 2 key(s)" in result.output and "1 deleted key(s)" in result.output
        assert "set VAULT_FINGERPRINT_KEY" in result.output
        assert readable(SecretBox(NEW)) == sorted(KEPT), "every key now opens with the new key alone"

    with restart(NEW, fingerprint_key=OLD) as app:  # 3. drop the old key (it keys fingerprints only), restart
        assert rows() == before, "no key added twice; the deleted key stays deleted"
        assert readable(runtime().secret_box) == sorted(KEPT)
        snapshot = read_snapshot(db.session, runtime().secret_box, 0)
        assert sorted(key.secret for key in snapshot.keys) == sorted(KEPT)
        added = pool.add_upstream_key(db.session, DELETED, runtime().secret_box)
        assert added.created and added.key.id == rows_id(DELETED), "adding a deleted key again revives its row"
        db.session.rollback()


def test_forgetting_the_fingerprint_key_is_refused_not_duplicated(app, restart):
    db.create_all()
    with restart(OLD):
        before = rows()
    with restart(f"{NEW},{OLD}") as app:
        assert app.test_cli_runner().invoke(args=["upstream", "reencrypt"]).exit_code == 0
    with pytest.raises(ConfigError, match="VAULT_FINGERPRINT_KEY"):
        with restart(NEW):
            pass
    with restart(NEW, fingerprint_key=OLD):
        assert rows() == before


def test_reencrypt_reports_keys_it_cannot_open(app, runner):
    pool.add_upstream_key(db.session, KEPT[0], runtime().secret_box)
    db.session.commit()
    db.session.execute(UpstreamKey.__table__.update().values(secret_encrypted=SecretBox(NEW).encrypt(KEPT[0])))
    db.session.commit()
    result = runner.invoke(args=["upstream", "reencrypt"])
    assert result.exit_code == 1 and "cannot be decrypted" in result.output


def test_reencrypt_never_revives_a_key_deleted_meanwhile(app, monkeypatch):
    box = runtime().secret_box
    key = pool.add_upstream_key(db.session, KEPT[0], box).key
    db.session.commit()
    rotate = box.rotate

    def deleted_while_rotating(token: str) -> str:
        # An admin deletes the key between reencrypt's read and its write.
        db.session.execute(UpstreamKey.__table__.update().values(secret_encrypted="", state="deleted"))
        return rotate(token)

    monkeypatch.setattr(box, "rotate", deleted_while_rotating)
    assert reencrypt_pool(db.session, box).reencrypted == 0
    db.session.commit()
    assert db.session.get(UpstreamKey, key.id).secret_encrypted == ""


def rows_id(secret: str) -> int:
    masked = f"{secret[:4]}…{secret[-4:]}"
    return db.session.scalar(select(UpstreamKey.id).where(UpstreamKey.masked == masked))
