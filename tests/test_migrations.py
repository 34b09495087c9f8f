"""Migrations build the schema from nothing, on SQLite and PostgreSQL, exactly as the models say."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from tests.conftest import app_config
from vault import create_app
from vault.extensions import db


@pytest.fixture
def migrated_app(fresh_database_url, tmp_path):
    app = create_app(app_config(tmp_path, DATABASE_URL=fresh_database_url), environ={})
    with app.app_context():
        upgrade()
        yield app
        db.session.remove()
        db.engine.dispose()


def test_upgrade_creates_every_model_table(migrated_app):
    tables = set(inspect(db.engine).get_table_names())
    assert set(db.metadata.tables) <= tables
    assert "alembic_version" in tables


def test_models_match_the_migrated_schema(migrated_app):
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, db.metadata) == []


def test_downgrade_to_nothing_and_back(migrated_app):
    downgrade(revision="base")
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
    upgrade()
    assert set(db.metadata.tables) <= set(inspect(db.engine).get_table_names())
