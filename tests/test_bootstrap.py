"""Admin and upstream keys from the environment, applied at start, idempotently."""

import pytest

from tests.conftest import app_config
from vault import create_app
from vault.config import ConfigError
from vault.extensions import db
from vault.models import UpstreamKey, User

ENVIRONMENT = {
    "VAULT_ADMIN_EMAIL": "root@example.com",
    "VAULT_ADMIN_PASSWORD": "admin password",
    "GEMINI_API_KEYS": "AIzaSyA-first-upstream-key-0000000000001, AIzaSyB-second-upstream-key-000000000002",
}


def start(database_url, tmp_path, environ=ENVIRONMENT):
    return create_app(app_config(tmp_path, DATABASE_URL=database_url, VAULT_BOOTSTRAP=True), environ=environ)


def test_starting_twice_creates_nothing_twice(app, database_url, tmp_path):
    for _ in range(2):
        start(database_url, tmp_path)
    users = db.session.scalars(db.select(User)).all()
    assert [(user.email, user.is_admin) for user in users] == [("root@example.com", True)]
    assert db.session.query(UpstreamKey).count() == 2


def test_existing_admin_keeps_its_password(app, database_url, tmp_path, make_user):
    make_user(email="root@example.com", password="the real one", is_admin=True)
    start(database_url, tmp_path)
    from vault.runtime import runtime

    user = db.session.scalar(db.select(User))
    assert runtime().passwords.verify(user.password_hash, "the real one")


def test_an_existing_non_admin_is_not_promoted(app, database_url, tmp_path, make_user, auth_headers, caplog):
    from vault.runtime import runtime

    squatter = make_user(email="root@example.com", password="the squatter's one")
    headers = auth_headers(squatter)
    with caplog.at_level("WARNING", logger="vault.bootstrap"):
        start(database_url, tmp_path)
    db.session.expire_all()
    user = db.session.scalar(db.select(User).where(User.email == "root@example.com"))
    assert not user.is_admin and runtime().passwords.verify(user.password_hash, "the squatter's one")
    assert "NOT promoted" in caplog.text and "--force" in caplog.text
    assert app.test_client().get("/admin/api/users", headers=headers).status_code == 403


def test_bad_bootstrap_values_stop_the_start(app, database_url, tmp_path):
    with pytest.raises(ConfigError, match="VAULT_ADMIN"):
        start(database_url, tmp_path, {"VAULT_ADMIN_EMAIL": "root@example.com", "VAULT_ADMIN_PASSWORD": "short"})
    with pytest.raises(ConfigError, match="GEMINI_API_KEYS"):
        start(database_url, tmp_path, {"GEMINI_API_KEYS": "not a key"})


def test_bootstrap_waits_for_migrations(tmp_path):
    empty = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    started = start(empty, tmp_path)
    assert started is not None
