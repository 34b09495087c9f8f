"""Operator commands: create-admin and the upstream pool, never printing a full key."""

from tests.conftest import DEFAULT_PASSWORD
from vault.accounts import find_user_by_email
from vault.extensions import db
from vault.models import AuditEntry, UpstreamKey, User
from vault.runtime import runtime

UPSTREAM_KEYS = ["AIzaSyA-first-upstream-key-0000000000001", "AIzaSyB-second-upstream-key-000000000002"]


def test_create_admin_creates_an_admin(runner):
    result = runner.invoke(args=["create-admin", "--email", "Root@Example.com", "--password", "admin password"])
    assert result.exit_code == 0, result.output
    assert "Created admin root@example.com" in result.output
    admin = find_user_by_email(db.session, "root@example.com")
    assert admin.is_admin and admin.is_active and runtime().passwords.verify(admin.password_hash, "admin password")


def test_create_admin_refuses_to_promote_without_force(runner, make_user, auth_headers, client, db_snapshot):
    user = make_user(email="ada@example.com")
    headers = auth_headers(user)
    before = db_snapshot()
    result = runner.invoke(args=["create-admin", "--email", "ada@example.com", "--password", "new admin pass"])
    assert result.exit_code != 0
    assert "not an admin" in result.output and "--force" in result.output
    assert db_snapshot() == before
    assert client.get("/auth/users/me", headers=headers).status_code == 200


def test_create_admin_with_force_promotes_and_ends_sessions(app, runner, make_user, auth_headers, client):
    user = make_user(email="ada@example.com")
    headers = auth_headers(user)
    browser = app.test_client()
    with browser.session_transaction() as session:
        session["_user_id"], session["_fresh"] = user.get_id(), True
    result = runner.invoke(args=["create-admin", "--email", "ada@example.com", "--password", "new admin pass",
                                 "--force"])
    assert result.exit_code == 0, result.output
    assert "Updated admin ada@example.com" in result.output and "session" in result.output
    db.session.expire_all()
    promoted = find_user_by_email(db.session, "ada@example.com")
    assert promoted.is_admin and runtime().passwords.verify(promoted.password_hash, "new admin pass")
    assert client.get("/auth/users/me", headers=headers).status_code == 401
    assert browser.get("/auth/users/me").status_code == 401
    assert db.session.query(User).count() == 1


def test_create_admin_on_an_existing_admin_resets_it_and_ends_sessions(runner, make_user, auth_headers, client):
    admin = make_user(email="root@example.com", password="old admin password", is_admin=True, is_active=False)
    headers = auth_headers(admin)
    result = runner.invoke(args=["create-admin", "--email", "root@example.com", "--password", "new admin pass"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    admin = find_user_by_email(db.session, "root@example.com")
    assert admin.is_admin and admin.is_active and runtime().passwords.verify(admin.password_hash, "new admin pass")
    assert client.get("/auth/users/me", headers=headers).status_code == 401


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
    assert db.session.query(AuditEntry).count() == 0


def test_upstream_add_is_audited_from_the_cli(runner):
    """Every pool change is audited: `flask upstream add` as `pool.add` by no one from `cli`, like the web's."""
    result = runner.invoke(args=["upstream", "add", *UPSTREAM_KEYS])
    assert result.exit_code == 0, result.output
    entry = db.session.scalars(db.select(AuditEntry)).one()
    assert (entry.action, entry.target, entry.before, entry.after) == (
        "pool.add", "upstream_keys", None, {"added": 2, "duplicates": 0, "invalid_count": 0})
    assert (entry.actor_id, entry.actor_email, entry.ip) == (None, "", "cli")
    again = runner.invoke(args=["upstream", "add", UPSTREAM_KEYS[0]])
    assert again.exit_code == 0 and "already in the pool" in again.output
    assert db.session.query(AuditEntry).count() == 1, "adding nothing changes nothing: no entry"


def test_upstream_list_when_empty(runner):
    assert "The pool is empty" in runner.invoke(args=["upstream", "list"]).output


def test_passwords_are_prompted_when_omitted(runner):
    result = runner.invoke(args=["create-admin", "--email", "root@example.com"],
                           input=f"{DEFAULT_PASSWORD}\n{DEFAULT_PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert DEFAULT_PASSWORD not in result.output
