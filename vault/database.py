"""Engine settings per database: pooled PostgreSQL, SQLite tuned for several workers."""

import time
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import DisconnectionError

# A pooled connection idle longer than this is pinged before use (one round trip); one used
# more recently is trusted, and a dead one is replaced when its statement fails.
PING_AFTER_IDLE_SECONDS = 10.0


def engine_options(url: str, pool_size: int, max_overflow: int) -> dict[str, Any]:
    """SQLAlchemy engine options suited to the database behind `url`."""
    if url.startswith("sqlite"):
        # Writers from several gunicorn workers wait for each other instead of failing.
        return {"connect_args": {"timeout": 30}}
    return {
        "pool_size": pool_size,
        "max_overflow": max_overflow,
        "pool_recycle": 1800,
    }


def install_idle_ping(engine: Engine, idle_seconds: float = PING_AFTER_IDLE_SECONDS) -> None:
    """Ping a pooled server connection before use only if it sat idle (`pool_pre_ping` pings
    before every use: a round trip per proxied call). A failed ping makes the pool open a new one."""
    if engine.dialect.name == "sqlite":
        return

    @event.listens_for(engine, "checkin")
    def note_idle(_dbapi_connection, record) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def ping_if_idle(dbapi_connection, record, _proxy) -> None:
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < idle_seconds:
            return
        try:
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
            dbapi_connection.rollback()
        except Exception as exc:
            raise DisconnectionError("pooled connection failed its ping") from exc


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
