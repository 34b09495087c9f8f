"""Balances outside requests: signup credit, admins' additions and settings, and the ledger check.

A balance only moves through single conditional UPDATE statements; every change is
recorded as a `BalanceAdjustment`, so `check_balances` can recompute each balance as
adjustments − settled costs − open holds.
"""

from dataclasses import dataclass

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from vault.billing.ledger import holds, records, users
from vault.errors import Conflict
from vault.models import BalanceAdjustment, User


def record_signup_credit(session: Session, user: User) -> None:
    """Put a new user's starting balance in the ledger."""
    session.add(BalanceAdjustment(user_id=user.id, admin_id=None, kind="signup", amount_nano=user.balance_nano,
                                  reason="starting credit"))


def add_to_balance(session: Session, user_id: int, admin_id: int, amount: int, reason: str) -> BalanceAdjustment:
    """Add `amount` (may be negative) to a balance atomically, recording who and why."""
    session.execute(update(users).where(users.c.id == user_id).values(balance_nano=users.c.balance_nano + amount))
    adjustment = BalanceAdjustment(user_id=user_id, admin_id=admin_id, kind="add", amount_nano=amount, reason=reason)
    session.add(adjustment)
    rearm_low_balance(session, user_id)
    return adjustment


def rearm_low_balance(session: Session, user_id: int) -> None:
    """Clear the user's low-balance alert if a top-up brought the balance back to the threshold or above.

    The alert monitor re-arms only users it sees above their threshold; a fall below it again
    before its next round would otherwise raise no alert.
    """
    session.execute(update(users).where(
        users.c.id == user_id, users.c.low_balance_alerted_at.is_not(None),
        users.c.balance_nano >= users.c.low_balance_threshold_nano,
    ).values(low_balance_alerted_at=None))


OPEN_HOLDS = (select(func.coalesce(func.sum(holds.c.amount_nano), 0))
              .where(holds.c.user_id == users.c.id).scalar_subquery())
READ_BALANCE_AND_HOLDS = select(users.c.balance_nano, OPEN_HOLDS).where(users.c.id == bindparam("user_id"))


def set_balance(session: Session, user_id: int, admin_id: int, value: int, reason: str,
                attempts: int = 10) -> BalanceAdjustment:
    """Set a balance to `value` minus what the user's requests in flight end up costing.

    The stored balance becomes `value − Σ open holds` (compare-and-swap, retried), and the
    change is recorded; as each hold settles it refunds `hold − cost`, so once nothing is in
    flight the balance is `value − their cost`.
    """
    for _ in range(attempts):
        seen, held = session.execute(READ_BALANCE_AND_HOLDS, {"user_id": user_id}).one()
        target = value - int(held)
        swapped = session.execute(
            update(users).where(users.c.id == user_id, users.c.balance_nano == seen).values(balance_nano=target)
        ).rowcount
        if swapped:
            adjustment = BalanceAdjustment(user_id=user_id, admin_id=admin_id, kind="set", amount_nano=target - seen,
                                           reason=reason)
            session.add(adjustment)
            rearm_low_balance(session, user_id)
            return adjustment
    raise Conflict("The balance kept changing; retry.")


def recent_adjustments(session: Session, user_id: int, limit: int = 100) -> list[BalanceAdjustment]:
    """A user's latest balance adjustments, newest first."""
    query = (select(BalanceAdjustment).where(BalanceAdjustment.user_id == user_id)
             .order_by(BalanceAdjustment.id.desc()).limit(limit))
    return list(session.scalars(query))


@dataclass(frozen=True)
class LedgerCheck:
    """One user's stored balance next to the balance the ledger gives."""

    user_id: int
    email: str
    stored: int
    adjustments: int
    settled: int
    held: int
    open_holds: int

    @property
    def expected(self) -> int:
        """Adjustments (signup credit included) minus settled costs minus open holds."""
        return self.adjustments - self.settled - self.held

    @property
    def difference(self) -> int:
        return self.stored - self.expected

    @property
    def consistent(self) -> bool:
        return self.difference == 0


def check_balances(session: Session, user_id: int | None = None) -> list[LedgerCheck]:
    """Every user's (or one user's) balance checked against the ledger, in one statement.

    One statement reads one snapshot on PostgreSQL, so requests settling meanwhile never
    show as a difference.
    """
    def per_user(table, *columns):
        query = select(table.c.user_id, *columns).group_by(table.c.user_id)
        return (query if user_id is None else query.where(table.c.user_id == user_id)).subquery()

    adjustments = BalanceAdjustment.__table__
    adjusted = per_user(adjustments, func.sum(adjustments.c.amount_nano).label("total"))
    spent = per_user(records, func.sum(records.c.cost_nano).label("total"))
    held = per_user(holds, func.sum(holds.c.amount_nano).label("total"), func.count(holds.c.id).label("count"))
    query = (
        select(users.c.id, users.c.email, users.c.balance_nano, func.coalesce(adjusted.c.total, 0),
               func.coalesce(spent.c.total, 0), func.coalesce(held.c.total, 0), func.coalesce(held.c.count, 0))
        .outerjoin(adjusted, adjusted.c.user_id == users.c.id).outerjoin(spent, spent.c.user_id == users.c.id)
        .outerjoin(held, held.c.user_id == users.c.id).order_by(users.c.id)
    )
    if user_id is not None:
        query = query.where(users.c.id == user_id)
    return [LedgerCheck(row[0], row[1], *(int(value) for value in row[2:])) for row in session.execute(query)]


def ledger_balance(session: Session, user_id: int) -> int:
    """A balance recomputed from the ledger: adjustments − settled costs − open holds."""
    return check_balances(session, user_id)[0].expected
