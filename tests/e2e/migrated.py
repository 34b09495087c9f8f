"""Databases as `flask --app wsgi db upgrade` leaves them, migrated once per test process and copied.

The command costs about a second and a half (a fresh interpreter, the app, Alembic and every
migration), and the end-to-end tests need scores of freshly migrated databases. Each test
process runs the real command once per backend, on a template of its own, then copies the
result: a file copy for SQLite, `CREATE DATABASE … TEMPLATE` for PostgreSQL. The migrations
read nothing from the environment but the database URL, so every copy is what the command
would have made.
"""

import atexit
import shutil
import tempfile
from pathlib import Path

from sqlalchemy import create_engine, make_url, text

from tests.databases import create_scratch_database, drop_scratch_database, postgres_admin_url
from tests.e2e.server import flask_cli, vault_environment

_templates: dict[str, str] = {}


def migrate(environ: dict[str, str]) -> None:
    """Give the empty database at `environ["DATABASE_URL"]` the migrated schema and its seeded rows."""
    url = environ["DATABASE_URL"]
    backend = "sqlite" if url.startswith("sqlite") else "postgresql"
    template = _templates.get(backend) or _make_template(backend)
    if backend == "sqlite":
        target = Path(url.removeprefix("sqlite:///"))
        if target.exists():
            raise AssertionError(f"{target} is not a new database")
        shutil.copyfile(template, target)
    else:
        name = make_url(url).database
        engine = create_engine(postgres_admin_url(), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        engine.dispose()


def _make_template(backend: str) -> str:
    folder = Path(tempfile.mkdtemp(prefix="vault-migrated-"))
    atexit.register(shutil.rmtree, folder, True)
    if backend == "sqlite":
        template = folder / "migrated.sqlite3"
        url, made = f"sqlite:///{template}", str(template)
    else:
        scratch = create_scratch_database("vault_migrated")
        atexit.register(drop_scratch_database, scratch)
        url, made = scratch.render_as_string(hide_password=False), scratch.database
    upgraded = flask_cli(vault_environment(url, folder / "instance", VAULT_BOOTSTRAP="false"), "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    if backend == "sqlite":
        assert not Path(f"{template}-wal").exists(), "the migrated SQLite file was left with a write-ahead log"
    _templates[backend] = made
    return made
