"""Operator commands: create-admin and the upstream pool, never printing a full key."""

from tests.conftest import DEFAULT_PASSWORD
from vault.accounts import find_user_by_email
from vault.extensions import db
from vault.models import UpstreamKey, User
from vault.runtime import runtime

UPSTREAM_KEYS = ["AIzaSyA-first-upstream-key-0000000000001", "AIzaSyB-second-upstream-key-000000000002"]


def test_create_admin_creates_then_promotes(runner, make_user):
    result = runner.invoke(args=["create-admin", "--email", "Root@Example.com", "--password", "admin password"])
    assert result.exit_code == 0, result.output
    assert "Created admin root@example.com" in result.output
    admin = find_user_by_email(db.session, "root@example.com")
    assert admin.is_admin and runtime().passwords.verify(admin.password_hash, "admin password")

    make_user(email="ada@example.com")
    result = runner.invoke(args=["create-admin", "--email", "ada@example.com", "--password", "new admin pass"])
    assert result.exit_code == 0 and "Updated admin" in result.output
    db.session.expire_all()
    assert find_user_by_email(db.session, "ada@example.com").is_admin
    assert db.session.query(User).count() == 2


def test_create_admin_rejects_bad_input(runner, db_snapshot):
    before = db_snapshot()
    for args in (["--email", "nope", "--password", "admin password"],
                 ["--email", "root@example.com", "--password", "short"]):
        result = runner.invoke(args=["create-admin", *args])
        assert result.exit_code != 0
        assert "Error" in result.output
    assert db_snapshot() == before


def test_upstream_add_encrypts_dedupes_and_masks(runner):
    result = runner.invoke(args=["upstream", "add", *UPSTREAM_KEYS])
    assert result.exit_code == 0, result.output
    assert result.output.count("added") == 2
    again = runner.invoke(args=["upstream", "add", UPSTREAM_KEYS[0]])
    assert "already in the pool" in again.output
    rows = db.session.scalars(db.select(UpstreamKey).order_by(UpstreamKey.id)).all()
    assert len(rows) == 2
    box = runtime().secret_box
    for row, secret in zip(rows, UPSTREAM_KEYS, strict=True):
        assert secret not in row.secret_encrypted and secret[4:-4] not in row.secret_encrypted
        assert box.decrypt(row.secret_encrypted) == secret
        assert row.masked == f"{secret[:4]}…{secret[-4:]}"
    listing = runner.invoke(args=["upstream", "list"])
    for output in (result.output, again.output, listing.output):
        assert all(secret not in output for secret in UPSTREAM_KEYS)
    assert "AIza…0001" in listing.output and "active" in listing.output


def test_upstream_add_reads_stdin(runner):
    result = runner.invoke(args=["upstream", "add", "-"], input="\n".join(UPSTREAM_KEYS) + "\n\n")
    assert result.exit_code == 0, result.output
    assert db.session.query(UpstreamKey).count() == 2


def test_upstream_add_refuses_garbage_and_adds_nothing(runner):
    result = runner.invoke(args=["upstream", "add", UPSTREAM_KEYS[0], "has spaces in it"])
    assert result.exit_code != 0
    assert db.session.query(UpstreamKey).count() == 0


def test_upstream_list_when_empty(runner):
    assert "The pool is empty" in runner.invoke(args=["upstream", "list"]).output


def test_passwords_are_prompted_when_omitted(runner):
    result = runner.invoke(args=["create-admin", "--email", "root@example.com"],
                           input=f"{DEFAULT_PASSWORD}\n{DEFAULT_PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert DEFAULT_PASSWORD not in result.output
