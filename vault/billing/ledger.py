"""The ledger: holds taken before forwarding, settlement after, and admin adjustments.

Every amount is integer nano-USD (see `vault.billing.money`). Balances only move through
single conditional UPDATE statements, never a read-modify-write in Python, so concurrent
requests on SQLite and PostgreSQL add up exactly.
"""

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vault.billing.prices import Rates
from vault.billing.usage import Usage
from vault.errors import Conflict, PaymentRequired
from vault.models import ApiKey, BalanceAdjustment, UpstreamKey, UsageRecord, User

RESERVE_FULL = (
    update(User.__table__)
    .where(User.__table__.c.id == bindparam("user_id"), User.__table__.c.balance_nano >= bindparam("hold"))
    .values(balance_nano=User.__table__.c.balance_nano - bindparam("hold"))
)
TAKE_REST = (
    update(User.__table__)
    .where(User.__table__.c.id == bindparam("user_id"), User.__table__.c.balance_nano == bindparam("seen"))
    .values(balance_nano=0)
)
READ_BALANCE = select(User.__table__.c.balance_nano).where(User.__table__.c.id == bindparam("user_id"))


def reserve(session: Session, user_id: int, hold: int, attempts: int = 5) -> int:
    """Reserve up to `hold` from the balance and commit; return what was taken.

    One conditional UPDATE takes the full hold when the balance covers it. Otherwise a
    positive balance is taken whole with a compare-and-swap on the value just read (so a
    concurrent change makes it retry, never double-spend). `PaymentRequired` when the
    balance is spent.
    """
    for _ in range(attempts):
        if hold > 0 and session.execute(RESERVE_FULL, {"user_id": user_id, "hold": hold}).rowcount:
            session.commit()
            return hold
        seen = session.execute(READ_BALANCE, {"user_id": user_id}).scalar_one()
        if seen <= 0:
            session.rollback()
            raise PaymentRequired("Your balance is spent; ask an admin to add credit.")
        if hold == 0:
            session.rollback()
            return 0
        if session.execute(TAKE_REST, {"user_id": user_id, "seen": seen}).rowcount:
            session.commit()
            return seen
        session.rollback()
    raise PaymentRequired("Your balance is changing too fast to reserve; retry.")


@dataclass
class Settlement:
    """Everything the ledger keeps about one finished request."""

    request_id: str
    user_id: int
    api_key_id: int | None
    endpoint: str
    model: str
    status: int
    started_at: datetime
    finished_at: datetime
    total_ms: int
    ending: str = "completed"
    streamed: bool = False
    upstream_key_id: int | None = None
    priced_model: str = ""
    usage: Usage = field(default_factory=Usage)
    rates: Rates = field(default_factory=lambda: Rates(0, 0, 0))
    cost: int = 0
    hold: int = 0
    first_byte_ms: int | None = None
    error: str | None = None

    def record_values(self) -> dict:
        usage = self.usage
        return {
            "request_id": self.request_id, "user_id": self.user_id, "api_key_id": self.api_key_id,
            "upstream_key_id": self.upstream_key_id, "endpoint": self.endpoint, "model": self.model[:128],
            "priced_model": self.priced_model[:128], "status": self.status, "streamed": self.streamed,
            "ending": self.ending, "prompt_tokens": usage.prompt, "cached_tokens": usage.cached,
            "tool_prompt_tokens": usage.tool_prompt, "candidates_tokens": usage.candidates,
            "thoughts_tokens": usage.thoughts, "output_tokens": usage.output, "total_tokens": usage.total,
            "price_input_nano": self.rates.input, "price_output_nano": self.rates.output,
            "price_cached_nano": self.rates.cached, "cost_nano": self.cost, "hold_nano": self.hold,
            "first_byte_ms": self.first_byte_ms, "total_ms": self.total_ms, "started_at": self.started_at,
            "finished_at": self.finished_at, "error": (self.error or None) and self.error[:255],
        }


users, api_keys, upstream_keys = User.__table__, ApiKey.__table__, UpstreamKey.__table__
INSERT_RECORD = insert(UsageRecord.__table__)
SETTLE_USER = (
    update(users).where(users.c.id == bindparam("user_id"))
    .values(balance_nano=users.c.balance_nano + bindparam("refund"), request_count=users.c.request_count + 1,
            total_tokens=users.c.total_tokens + bindparam("tokens"), spend_nano=users.c.spend_nano + bindparam("cost"))
)
SETTLE_API_KEY = (
    update(api_keys).where(api_keys.c.id == bindparam("api_key_id"))
    .values(request_count=api_keys.c.request_count + 1, prompt_tokens=api_keys.c.prompt_tokens + bindparam("input"),
            output_tokens=api_keys.c.output_tokens + bindparam("output"),
            total_tokens=api_keys.c.total_tokens + bindparam("tokens"),
            spend_nano=api_keys.c.spend_nano + bindparam("cost"), last_used_at=bindparam("moment"))
)
SETTLE_UPSTREAM_KEY = (
    update(upstream_keys).where(upstream_keys.c.id == bindparam("upstream_key_id"))
    .values(request_count=upstream_keys.c.request_count + 1, last_used_at=bindparam("moment"))
)


def settle(session: Session, entry: Settlement) -> bool:
    """Write the usage record and move balance and counters, in one transaction.

    Returns False (and changes nothing) if this request id was already settled.
    """
    try:
        session.execute(INSERT_RECORD, entry.record_values())
    except IntegrityError:
        session.rollback()
        return False
    usage = entry.usage
    amounts = {"cost": entry.cost, "tokens": usage.total, "moment": entry.finished_at}
    session.execute(SETTLE_USER, amounts | {"user_id": entry.user_id, "refund": entry.hold - entry.cost})
    if entry.api_key_id is not None:
        key_amounts = {"api_key_id": entry.api_key_id, "input": usage.prompt + usage.tool_prompt,
                       "output": usage.output}
        session.execute(SETTLE_API_KEY, amounts | key_amounts)
    if entry.upstream_key_id is not None:
        session.execute(SETTLE_UPSTREAM_KEY, {"upstream_key_id": entry.upstream_key_id, "moment": entry.finished_at})
    session.commit()
    return True


def record_signup_credit(session: Session, user: User) -> None:
    """Put a new user's starting balance in the ledger."""
    session.add(BalanceAdjustment(user_id=user.id, admin_id=None, kind="signup", amount_nano=user.balance_nano,
                                  reason="starting credit"))


def add_to_balance(session: Session, user_id: int, admin_id: int, amount: int, reason: str) -> BalanceAdjustment:
    """Add `amount` (may be negative) to a balance atomically, recording who and why."""
    session.execute(update(users).where(users.c.id == user_id).values(balance_nano=users.c.balance_nano + amount))
    adjustment = BalanceAdjustment(user_id=user_id, admin_id=admin_id, kind="add", amount_nano=amount, reason=reason)
    session.add(adjustment)
    return adjustment


def set_balance(session: Session, user_id: int, admin_id: int, value: int, reason: str,
                attempts: int = 10) -> BalanceAdjustment:
    """Set a balance to `value`, recording the change it made (compare-and-swap, retried)."""
    for _ in range(attempts):
        seen = session.execute(READ_BALANCE, {"user_id": user_id}).scalar_one()
        swapped = session.execute(
            update(users).where(users.c.id == user_id, users.c.balance_nano == seen).values(balance_nano=value)
        ).rowcount
        if swapped:
            adjustment = BalanceAdjustment(user_id=user_id, admin_id=admin_id, kind="set", amount_nano=value - seen,
                                           reason=reason)
            session.add(adjustment)
            return adjustment
    raise Conflict("The balance kept changing; retry.")


def recent_adjustments(session: Session, user_id: int, limit: int = 100) -> list[BalanceAdjustment]:
    """A user's latest balance adjustments, newest first."""
    query = (select(BalanceAdjustment).where(BalanceAdjustment.user_id == user_id)
             .order_by(BalanceAdjustment.id.desc()).limit(limit))
    return list(session.scalars(query))


def ledger_balance(session: Session, user_id: int) -> int:
    """A balance recomputed from the ledger: adjustments minus the cost of every request."""
    adjusted = session.scalar(
        select(func.coalesce(func.sum(BalanceAdjustment.amount_nano), 0)).where(BalanceAdjustment.user_id == user_id)
    )
    spent = session.scalar(
        select(func.coalesce(func.sum(UsageRecord.cost_nano), 0)).where(UsageRecord.user_id == user_id)
    )
    return int(adjusted) - int(spent)
