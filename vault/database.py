"""Engine settings per database: pooled PostgreSQL, SQLite tuned for several workers."""

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import InvalidatePoolError

_UNPINGED = contextvars.ContextVar("unpinged_checkout", default=False)


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


def install_checkout_ping(engine: Engine) -> None:
    """Ping a pooled server connection before it is used, as `pool_pre_ping` does, except
    inside `unpinged()`: the proxy's one statement per call would pay a second round trip for
    it, and replaces a dead connection itself instead. A failed ping makes the pool open a new one."""
    if engine.dialect.name == "sqlite":
        return

    @event.listens_for(engine, "checkout")
    def ping(dbapi_connection, _record, _proxy) -> None:
        if _UNPINGED.get():
            return
        # A dead one renews the whole pool (its other connections went down with it), as
        # `pool_pre_ping` does.
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise InvalidatePoolError("pooled connection failed its ping") from exc
        if not alive:
            raise InvalidatePoolError("pooled connection failed its ping")


@contextmanager
def unpinged() -> Iterator[None]:
    """Check connections out without the ping (the caller retries a connection found dead)."""
    token = _UNPINGED.set(True)
    try:
        yield
    finally:
        _UNPINGED.reset(token)


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
