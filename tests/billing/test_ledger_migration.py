"""Migration 0007 keeps the ledger: request ids become settlement ids, open holds are released on the way down."""

import logging
from datetime import UTC, datetime

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from tests.conftest import app_config
from vault import create_app
from vault.extensions import db

NOW = datetime(2026, 11, 27, tzinfo=UTC)


@pytest.fixture(autouse=True)
def loggers_kept_enabled():
    """Alembic's `fileConfig` disables every logger that exists; later tests read theirs."""
    enabled = [logger for logger in logging.Logger.manager.loggerDict.values()
               if isinstance(logger, logging.Logger) and not logger.disabled]
    yield
    for logger in enabled:
        logger.disabled = False


@pytest.fixture
def before_the_ledger(fresh_database_url, tmp_path):
    """A database at 0006 with a user and two settled requests."""
    app = create_app(app_config(tmp_path, DATABASE_URL=fresh_database_url), environ={})
    with app.app_context():
        upgrade(revision="0006_prices")
        run = lambda sql, **values: db.session.execute(text(sql), values)  # noqa: E731
        run("INSERT INTO users (id, email, password_hash, balance_nano, created_at) "
            "VALUES (1, 'ada@example.com', 'x', 1000, :now)", now=NOW)
        for request_id in ("client-id-0001", "f" * 32):
            run("INSERT INTO usage_records (request_id, user_id, endpoint, model, status, streamed, ending, "
                "started_at, finished_at) VALUES (:rid, 1, 'generateContent', 'm', 200, false, 'completed', :now, "
                ":now)", rid=request_id, now=NOW)
        db.session.commit()
        yield app
        db.session.remove()
        db.engine.dispose()


def test_request_ids_become_settlement_ids_and_stay_traced(before_the_ledger):
    upgrade()
    rows = db.session.execute(text("SELECT settlement_id, client_request_id, usage_source FROM usage_records "
                                   "ORDER BY id")).all()
    assert [tuple(row) for row in rows] == [("client-id-0001", "client-id-0001", "reported"),
                                            ("f" * 32, "f" * 32, "reported")]


def test_downgrade_releases_open_holds(before_the_ledger):
    upgrade()
    db.session.execute(text("UPDATE users SET balance_nano = balance_nano - 700"))
    db.session.execute(text("INSERT INTO pending_holds (settlement_id, user_id, endpoint, model, amount_nano, "
                            "estimate_nano, created_at, expires_at) VALUES ('h1', 1, 'generateContent', 'm', 700, 0, "
                            ":now, :now)"), {"now": NOW})
    db.session.commit()
    downgrade(revision="0006_prices")
    assert db.session.execute(text("SELECT balance_nano FROM users")).scalar() == 1000
    assert db.session.execute(text("SELECT count(*) FROM usage_records WHERE request_id = 'client-id-0001'")).scalar()
