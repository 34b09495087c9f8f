"""PostgreSQL for the benchmark: a throw-away database, and a fast seed of usage records.

BENCH_DATABASE_URL names a PostgreSQL server and a database name, e.g.
postgresql://postgres@127.0.0.1:5432/bench_scratch. The harness never touches that database:
it creates `<name>_<random>` beside it, runs the Vault on it and drops it at the end.
"""

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

from bench.processes import BenchError

# Values of seeded usage records, by column; columns not named here get NULL or their default,
# or (NOT NULL without a default: a column added since) a zero of their type. Keys grow with `g`
# so every index takes its rows in order: a million rows in seconds, not minutes of random page writes.
SEED_VALUES = {
    "settlement_id": "'seed' || lpad(g::text, 28, '0')",
    "client_request_id": "'seed' || lpad(g::text, 28, '0')",
    "user_id": "%(user_id)s",
    "api_key_id": "%(api_key_id)s",
    "endpoint": "'generateContent'",
    "model": "'gemini-2.0-flash'",
    "priced_model": "'gemini-2.0-flash'",
    "status": "200",
    "streamed": "mod(g, 4) = 0",
    "ending": "'completed'",
    "usage_source": "'reported'",
    "prompt_tokens": "8",
    "candidates_tokens": "28",
    "output_tokens": "28",
    "total_tokens": "36",
    "price_input_nano": "100000000000",
    "price_output_nano": "400000000000",
    "cost_nano": "12000",
    "hold_nano": "30000",
    "first_byte_ms": "120",
    "total_ms": "900",
    "started_at": "now() - g * interval '1 second'",
    "finished_at": "now() - g * interval '1 second' + interval '900 milliseconds'",
}
ZERO_BY_TYPE = {"boolean": "false", "text": "''", "character varying": "''", "timestamp with time zone": "now()",
                "timestamp without time zone": "now()"}


def is_postgresql(url: str | None) -> bool:
    return bool(url) and urlsplit(url).scheme.split("+")[0] in ("postgresql", "postgres")


def libpq_url(url: str, database: str | None = None) -> str:
    """`url` without SQLAlchemy's `+driver`, optionally pointing at another database."""
    parts = urlsplit(url)
    path = f"/{database}" if database else parts.path
    return urlunsplit(("postgresql", parts.netloc, path, parts.query, ""))


@contextmanager
def scratch_database(url: str) -> Iterator[str]:
    """A fresh empty database on `url`'s server for the run (its URL, in `url`'s dialect); dropped after."""
    import psycopg
    from psycopg import sql

    name = f"{urlsplit(url).path.lstrip('/') or 'bench'}_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(libpq_url(url, "postgres"), autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise BenchError(f"cannot reach PostgreSQL at BENCH_DATABASE_URL: {exc}") from exc
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            parts = urlsplit(url)
            yield urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def seed_usage(url: str, email: str, rows: int) -> float:
    """Insert `rows` usage records for the user `email` in one statement; the seconds it took."""
    import psycopg

    started = time.monotonic()
    with psycopg.connect(libpq_url(url), connect_timeout=10) as connection:
        owner = connection.execute(
            "SELECT u.id, max(k.id) FROM users u LEFT JOIN api_keys k ON k.user_id = u.id WHERE u.email = %s "
            "GROUP BY u.id", (email,)).fetchone()
        if owner is None:
            raise BenchError(f"no user {email} to seed usage records for")
        columns, values = seed_columns(connection)
        connection.execute(insert_statement(columns, values),
                           {"user_id": owner[0], "api_key_id": owner[1], "rows": rows})
    with psycopg.connect(libpq_url(url), autocommit=True, connect_timeout=10) as connection:
        connection.execute("VACUUM ANALYZE usage_records")
    return time.monotonic() - started


def seed_columns(connection) -> tuple[list[str], list[str]]:
    """The usage_records columns to fill and the SQL expression of each (in terms of `g`)."""
    found = connection.execute(
        "SELECT column_name, data_type, is_nullable, column_default, is_identity FROM information_schema.columns "
        "WHERE table_name = 'usage_records' AND table_schema = current_schema()").fetchall()
    columns, values = [], []
    for name, data_type, nullable, default, identity in found:
        if name in SEED_VALUES:
            columns.append(name)
            values.append(SEED_VALUES[name])
        elif nullable == "NO" and default is None and identity != "YES":
            columns.append(name)
            values.append(ZERO_BY_TYPE.get(data_type, "0"))
    return columns, values


def insert_statement(columns: list[str], values: list[str]):
    from psycopg import sql

    return sql.SQL("INSERT INTO usage_records ({}) SELECT {} FROM generate_series(1, %(rows)s) AS g").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)), sql.SQL(", ".join(values)))
