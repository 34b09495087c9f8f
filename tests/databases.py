"""Test databases: the URLs from the environment and scratch PostgreSQL databases per run."""

import os
import uuid

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.engine import URL

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL")


def postgres_admin_url() -> URL:
    """TEST_DATABASE_URL as a psycopg 3 SQLAlchemy URL."""
    url = make_url(TEST_DATABASE_URL)
    return url.set(drivername="postgresql+psycopg")


def create_scratch_database(prefix: str) -> URL:
    """Create an empty PostgreSQL database for this run and return its URL."""
    admin_url = postgres_admin_url()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return admin_url.set(database=name)


def drop_scratch_database(url: URL) -> None:
    """Drop a database made by `create_scratch_database`, closing its connections."""
    engine = create_engine(postgres_admin_url(), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    engine.dispose()
