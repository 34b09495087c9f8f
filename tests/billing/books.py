"""Builders and the invariant shared by the ledger tests.

After every test that moves money: for every user, balance = adjustments − Σ settled costs
− Σ open holds, exactly, and no settlement id has two records.
"""

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from vault.billing import balances, ledger
from vault.billing.ledger import Settlement
from vault.extensions import db
from vault.models import PendingHold, UsageRecord, User
from vault.runtime import runtime


def settlement(user_id, **fields) -> Settlement:
    """A settlement of a finished request with a fresh settlement id."""
    now = datetime.now(UTC)
    defaults = {"settlement_id": uuid.uuid4().hex, "user_id": user_id, "api_key_id": None,
                "endpoint": "generateContent", "model": "gemini-2.5-flash", "status": 200, "started_at": now,
                "finished_at": now, "total_ms": 5}
    return Settlement(**(defaults | fields))


def take_hold(user_id: int, amount: int, minimum: int | None = None, estimate: int = 0,
              expires_in: float = 3600, settlement_id: str | None = None, api_key_id: int | None = None,
              client_request_id: str | None = None, sessions=None) -> tuple[str, int]:
    """Reserve `amount` for a new request in a session of its own; (settlement id, amount held).

    `sessions` is the session factory (needed outside the app context, e.g. in a thread).
    """
    settlement_id = settlement_id or uuid.uuid4().hex
    with (sessions or runtime().session_factory)() as session:
        held = ledger.reserve(session, user_id, settlement_id, amount, minimum, endpoint="generateContent",
                              model="gemini-2.5-flash", estimate_nano=estimate, api_key_id=api_key_id,
                              client_request_id=client_request_id,
                              expires_at=datetime.now(UTC) + timedelta(seconds=expires_in))
    return settlement_id, held


def settle(entry: Settlement) -> bool:
    with runtime().session_factory() as session:
        return ledger.settle(session, entry)


def balance_of(user_id: int) -> int:
    db.session.expire_all()
    return db.session.get(User, user_id).balance_nano


def open_holds(user_id: int | None = None) -> list[PendingHold]:
    db.session.expire_all()
    query = select(PendingHold).order_by(PendingHold.id)
    if user_id is not None:
        query = query.where(PendingHold.user_id == user_id)
    return list(db.session.scalars(query))


def records(user_id: int | None = None) -> list[UsageRecord]:
    db.session.expire_all()
    query = select(UsageRecord).order_by(UsageRecord.id)
    if user_id is not None:
        query = query.where(UsageRecord.user_id == user_id)
    return list(db.session.scalars(query))


def assert_books_balance(*user_ids: int) -> None:
    """The ledger invariant, for every user (or those given), and one record per settlement id."""
    db.session.rollback()
    checks = [check for user_id in user_ids for check in balances.check_balances(db.session, user_id)] if user_ids \
        else balances.check_balances(db.session)
    wrong = [check for check in checks if not check.consistent]
    assert wrong == [], wrong
    duplicates = db.session.execute(select(UsageRecord.settlement_id).group_by(UsageRecord.settlement_id)
                                    .having(func.count() > 1)).all()
    assert duplicates == []
    db.session.rollback()
