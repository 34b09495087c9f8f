"""Engine settings per database: pooled PostgreSQL, SQLite tuned for several workers."""

from typing import Any

from sqlalchemy import Engine, event


def engine_options(url: str, pool_size: int, max_overflow: int) -> dict[str, Any]:
    """SQLAlchemy engine options suited to the database behind `url`."""
    if url.startswith("sqlite"):
        # Writers from several gunicorn workers wait for each other instead of failing.
        return {"connect_args": {"timeout": 30}}
    return {
        "pool_size": pool_size,
        "max_overflow": max_overflow,
        "pool_pre_ping": True,
        "pool_recycle": 1800,
    }


def install_sqlite_pragmas(engine: Engine) -> None:
    """Turn on WAL, foreign keys and a busy timeout for every SQLite connection."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def set_pragmas(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL cannot corrupt the database; it skips an fsync per commit.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()
