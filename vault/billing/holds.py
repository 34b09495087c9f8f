"""Holds on the hot path: one round trip per proxied call, which also reads the version stamps.

A proxied call touches the database once before it is forwarded: a billable call takes its
hold (balance UPDATE and `pending_holds` row together: one statement on PostgreSQL, sent in
autocommit; two in one transaction on SQLite, where a statement costs no round trip), a
free call reads the balance it must not have spent. The same statement carries the `prices`
and `access` stamps (`vault.models.billing_version`), so the worker's cached price book and
Vault keys are checked on every call at no extra cost.

The hold goes straight to the pooled driver connection (SQLAlchemy's statement machinery
would cost more than the statement itself). Anything the one statement cannot settle — a
balance that covers less than the full hold, a refusal — goes to `ledger.reserve`, the
general (compare-and-swap) path, which gives the same answers with a few more statements.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from vault.billing import ledger
from vault.database import unpinged
from vault.errors import PaymentRequired, Unauthorized
from vault.models import PendingHold, User
from vault.models.billing_version import ACCESS, PRICES, stamp_of
from vault.models.types import UTCDateTime
from vault.policies import quota as key_quota

# PostgreSQL: balance and hold row in one statement (a data-modifying CTE), one round trip. The
# casts type the parameters of the SELECT list, which PostgreSQL would otherwise read as text.
TAKE_AND_RECORD = """
    WITH taken AS (
        UPDATE users SET balance_nano = balance_nano - :hold
        WHERE id = :user_id AND balance_nano >= :need
        RETURNING id)
    INSERT INTO pending_holds (settlement_id, client_request_id, user_id, api_key_id, endpoint, model,
                               amount_nano, estimate_nano, created_at, expires_at)
    SELECT CAST(:settlement_id AS VARCHAR), CAST(:client_request_id AS VARCHAR), CAST(:user_id AS INTEGER),
           CAST(:api_key_id AS INTEGER), CAST(:endpoint AS VARCHAR), CAST(:model AS VARCHAR), CAST(:hold AS BIGINT),
           CAST(:estimate_nano AS BIGINT), CAST(:created_at AS TIMESTAMPTZ), CAST(:expires_at AS TIMESTAMPTZ)
    FROM taken
    RETURNING (SELECT version FROM billing_versions WHERE name = 'prices'),
              (SELECT version FROM billing_versions WHERE name = 'access')
"""
# SQLite: the conditional UPDATE returns the stamps; the row follows in the same transaction.
TAKE_RETURNING = """
    UPDATE users SET balance_nano = balance_nano - :hold
    WHERE id = :user_id AND balance_nano >= :need
    RETURNING (SELECT version FROM billing_versions WHERE name = 'prices'),
              (SELECT version FROM billing_versions WHERE name = 'access')
"""
RECORD = """
    INSERT INTO pending_holds (settlement_id, client_request_id, user_id, api_key_id, endpoint, model,
                               amount_nano, estimate_nano, created_at, expires_at)
    VALUES (:settlement_id, :client_request_id, :user_id, :api_key_id, :endpoint, :model,
            :hold, :estimate_nano, :created_at, :expires_at)
"""
BALANCE_AND_STAMPS = """
    SELECT balance_nano,
           (SELECT version FROM billing_versions WHERE name = 'prices'),
           (SELECT version FROM billing_versions WHERE name = 'access')
    FROM users WHERE id = :user_id
"""
users = User.__table__
READ_STAMPS = select(stamp_of(PRICES), stamp_of(ACCESS))


@dataclass(frozen=True)
class Stamps:
    """The `prices` and `access` versions as one statement read them (None: no stamp row)."""

    prices: int | None = None
    access: int | None = None


@dataclass(frozen=True)
class Hold:
    """What a call holds (0 for free calls) and the stamps read while taking it."""

    amount: int
    stamps: Stamps


@dataclass(frozen=True)
class HoldRequest:
    """Who holds how much for which request, and what the sweeper charges if nobody settles it."""

    user_id: int
    settlement_id: str
    amount: int
    minimum: int | None
    endpoint: str
    model: str
    expires_at: datetime
    created_at: datetime
    estimate_nano: int = 0
    api_key_id: int | None = None
    client_request_id: str | None = None
    overdraft: int = 0
    quota: key_quota.Quota | None = None  # the key's spend cap, tokens per minute, concurrency

    def hold_row(self) -> dict:
        """The `pending_holds` row of this hold, but its amount."""
        parameters = self.parameters()
        return {name: parameters[name] for name in ("settlement_id", "client_request_id", "user_id", "api_key_id",
                                                     "endpoint", "model", "estimate_nano", "created_at",
                                                     "expires_at")}

    def parameters(self) -> dict:
        need = max(self.amount, self.minimum or 0)
        return {"settlement_id": self.settlement_id, "user_id": self.user_id, "api_key_id": self.api_key_id,
                "client_request_id": (self.client_request_id or None) and self.client_request_id[:64],
                "endpoint": self.endpoint[:64], "model": self.model[:128], "hold": self.amount,
                "need": max(need - self.overdraft, 1), "estimate_nano": self.estimate_nano,
                "created_at": self.created_at, "expires_at": self.expires_at}


def driver_sql(sql: str, postgres: bool) -> str:
    """`sql` with its `:name` parameters in the driver's own style (psycopg: `%(name)s`)."""
    return re.sub(r"(?<!:):(\w+)", r"%(\1)s", sql) if postgres else sql


class Holds:
    """Takes and releases holds for the Meter, in as few round trips as the database allows."""

    def __init__(self, engine: Engine, session_factory: Callable[[], Session]):
        self._engine = engine
        self._sessions = session_factory
        self._postgres = engine.dialect.name == "postgresql"
        self._driver_error = engine.dialect.loaded_dbapi.Error
        self._bind_time = UTCDateTime().dialect_impl(engine.dialect).bind_processor(engine.dialect) or (lambda v: v)
        self._take_and_record, self._take, self._record, self._balance = (
            driver_sql(statement, self._postgres)
            for statement in (TAKE_AND_RECORD, TAKE_RETURNING, RECORD, BALANCE_AND_STAMPS))

    def take(self, request: HoldRequest) -> Hold:
        """Hold `request.amount` (or what `ledger.reserve` allows when the balance covers less);
        `PaymentRequired` when the balance cannot pay. Free calls (amount 0) only check the balance.
        A key with a spend cap, tokens per minute or concurrency limit holds through
        `vault.policies.quota`, which checks them in the same transaction."""
        if request.quota is not None:
            return self._take_with_quota(request)
        if request.amount == 0:
            return self._check_balance(request)
        stamps = self._take_full(request)
        if stamps is not None:
            return Hold(request.amount, stamps)
        with self._sessions() as session:
            held = ledger.reserve(session, request.user_id, request.settlement_id, request.amount, request.minimum,
                                  endpoint=request.endpoint, model=request.model, expires_at=request.expires_at,
                                  estimate_nano=request.estimate_nano, api_key_id=request.api_key_id,
                                  client_request_id=request.client_request_id, overdraft=request.overdraft)
            prices, access = session.execute(READ_STAMPS).one()
            session.rollback()
        return Hold(held, Stamps(prices, access))

    def _take_with_quota(self, request: HoldRequest) -> Hold:
        with self._sessions() as session:
            held = key_quota.take(session, request.quota, user_id=request.user_id,
                                  settlement_id=request.settlement_id, amount=request.amount, minimum=request.minimum,
                                  row=request.hold_row(), now=request.created_at, overdraft=request.overdraft)
            prices, access = session.execute(READ_STAMPS).one()
            session.rollback()
        return Hold(held, Stamps(prices, access))

    def release(self, user_id: int, settlement_id: str) -> int:
        """Give a hold back untouched (the call was never forwarded); return the amount released."""
        holds = PendingHold.__table__
        with self._sessions() as session:
            amount = session.scalar(delete(holds).where(holds.c.settlement_id == settlement_id)
                                    .returning(holds.c.amount_nano))
            if amount:
                session.execute(update(users).where(users.c.id == user_id)
                                .values(balance_nano=users.c.balance_nano + amount))
            session.commit()
        return amount or 0

    def _take_full(self, request: HoldRequest) -> Stamps | None:
        """The whole hold in one round trip, or None when the balance does not cover it."""
        parameters = request.parameters()
        for name in ("created_at", "expires_at"):
            parameters[name] = self._bind_time(parameters[name])
        row = self._on_driver(self._take_on, parameters)
        return None if row is None else Stamps(row[0], row[1])

    def _on_driver(self, work: Callable, parameters: dict):
        """`work(connection, parameters)` on a pooled driver connection, taken without the pool's
        ping: SQLAlchemy's statement machinery and a ping would cost more than the statement.
        A connection found dead is replaced once, by a pinged checkout (which renews the whole
        pool if it finds more of them); a hold whose reply was lost then meets its own
        settlement id, and is given back when the call settles."""
        for attempt in (1, 2):
            try:
                if attempt == 1:
                    with unpinged():
                        connection = self._engine.raw_connection()
                else:
                    connection = self._engine.raw_connection()
            except self._driver_error as exc:  # no connection to be had: the database is away
                raise DBAPIError.instance("connect", {}, exc, self._driver_error) from exc
            try:
                if self._postgres:
                    return self._autocommitted(work, connection, parameters)
                return work(connection, parameters)
            except self._driver_error as exc:
                dead = self._engine.dialect.is_disconnect(exc, connection.dbapi_connection, None)
                if dead:
                    connection.invalidate(exc)
                if not dead or attempt == 2:
                    raise DBAPIError.instance("hold", parameters, exc, self._driver_error) from exc
            finally:
                connection.close()
        return None

    @staticmethod
    def _autocommitted(work: Callable, connection, parameters: dict):
        driver = connection.dbapi_connection
        if driver.info.transaction_status != driver.info.transaction_status.IDLE:
            driver.rollback()  # a pinged checkout left the ping's transaction open
        driver.autocommit = True  # one statement: no BEGIN or COMMIT round trip
        try:
            return work(connection, parameters)
        finally:
            driver.autocommit = False

    def _take_on(self, connection, parameters: dict):
        cursor = connection.cursor()
        try:
            if self._postgres:
                cursor.execute(self._take_and_record, parameters)
                return cursor.fetchone()
            cursor.execute(self._take, parameters)
            row = cursor.fetchone()
            if row is None:
                connection.rollback()
                return None
            cursor.execute(self._record, parameters)
            connection.commit()
            return row
        except BaseException:
            if not self._postgres:
                connection.rollback()
            raise
        finally:
            cursor.close()

    def _read_balance(self, connection, parameters: dict):
        cursor = connection.cursor()
        try:
            cursor.execute(self._balance, parameters)
            return cursor.fetchone()
        finally:
            cursor.close()

    def _check_balance(self, request: HoldRequest) -> Hold:
        row = self._on_driver(self._read_balance, {"user_id": request.user_id})
        if row is None:
            raise Unauthorized(ledger.GONE)
        balance, prices, access = row
        if balance <= 0:
            raise PaymentRequired(ledger.SPENT)
        if request.minimum is not None and balance + request.overdraft < request.minimum:
            raise PaymentRequired(ledger.TOO_LOW)
        return Hold(0, Stamps(prices, access))
