"""Money: model prices, the hold before forwarding, the settlement after, admin adjustments.

Every amount is integer nano-USD (see `vault.money`); prices are nano-USD per 1M tokens.
Balances only move through single conditional UPDATE statements, never a read-modify-write
in Python, so concurrent requests on SQLite and PostgreSQL add up exactly.
"""

import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vault.errors import Conflict, PaymentRequired
from vault.metering import Usage
from vault.models import ApiKey, BalanceAdjustment, ModelPrice, UpstreamKey, UsageRecord, User
from vault.money import usd_to_nano

PER_MILLION = 1_000_000
ALIASES = {
    "gemini-pro-latest": "gemini-2.5-pro",
    "gemini-flash-latest": "gemini-2.5-flash",
    "gemini-flash-lite-latest": "gemini-2.5-flash-lite",
}
VERSION_SUFFIX = re.compile(r"-(\d{3}|latest)$")
@dataclass(frozen=True)
class Rates:
    """The three prices that apply to one request (nano-USD per 1M tokens)."""

    input: int
    output: int
    cached: int


@dataclass(frozen=True)
class Price:
    """A model's prices, with the higher tier above `tier_threshold` prompt tokens."""

    model: str
    base: Rates
    tier_threshold: int | None = None
    above: Rates | None = None

    def rates_for(self, prompt_tokens: int) -> Rates:
        """The rates for a request whose prompt has `prompt_tokens` tokens."""
        if self.above is not None and self.tier_threshold is not None and prompt_tokens > self.tier_threshold:
            return self.above
        return self.base


FREE = Price("free", Rates(0, 0, 0))


def price_from_row(row: ModelPrice) -> Price:
    above = None
    if row.tier_threshold is not None and row.input_above_nano is not None:
        above = Rates(row.input_above_nano, row.output_above_nano or row.output_nano,
                      row.cached_above_nano if row.cached_above_nano is not None else row.cached_nano)
    return Price(row.model, Rates(row.input_nano, row.output_nano, row.cached_nano), row.tier_threshold, above)


def cost_nano(usage: Usage, rates: Rates) -> int:
    """What `usage` costs: uncached and tool-use input, cached input, and output, rounded half up."""
    uncached = max(usage.prompt - usage.cached, 0) + usage.tool_prompt
    numerator = uncached * rates.input + usage.cached * rates.cached + usage.output * rates.output
    return (numerator + PER_MILLION // 2) // PER_MILLION


def model_candidates(model: str) -> list[str]:
    """Names to look a model up by: as given, de-aliased, without a version suffix."""
    bare = model.strip().removeprefix("models/")
    names = [bare, ALIASES.get(bare, bare), VERSION_SUFFIX.sub("", bare)]
    return list(dict.fromkeys(name for name in names if name))


class PriceBook:
    """The price table cached in memory, re-read every `refresh_seconds` or on demand."""

    def __init__(self, session_factory: Callable[[], Session], fallback: Price, refresh_seconds: float,
                 clock: Callable[[], float] = time.monotonic):
        self._sessions = session_factory
        self.fallback = fallback
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._prices: dict[str, Price] = {}
        self._loaded_at = -math.inf
        self._lock = threading.Lock()

    def lookup(self, model: str) -> Price:
        """The price of `model` (normalised), or the fallback for unknown models."""
        if self._clock() - self._loaded_at >= self._refresh_seconds:
            self.refresh()
        for name in model_candidates(model):
            if name in self._prices:
                return self._prices[name]
        return self.fallback

    def refresh(self) -> None:
        """Re-read the price table now."""
        with self._lock, self._sessions() as session:
            self._prices = {row.model: price_from_row(row) for row in session.scalars(select(ModelPrice))}
            self._loaded_at = self._clock()


def requested_output_tokens(payload: object) -> int | None:
    """The output cap a parsed request asks for (`maxOutputTokens`, `max_tokens`, …), if any."""
    if not isinstance(payload, dict):
        return None
    config = payload.get("generationConfig") or payload.get("generation_config") or {}
    candidates = [payload.get("max_completion_tokens"), payload.get("max_tokens")]
    if isinstance(config, dict):
        candidates += [config.get("maxOutputTokens"), config.get("max_output_tokens")]
    return next((value for value in candidates if isinstance(value, int) and value > 0), None)


def estimate_hold(size: int, payload: object, price: Price, default_output: int, floor_nano: int) -> int:
    """What to reserve before forwarding: the request's size (`size` bytes, about four a token)
    as input plus its output cap (or `default_output`), at the model's price, at least `floor_nano`.

    `payload` is the request body already parsed (never parsed again here).
    """
    prompt = size // 4 + 1
    output = requested_output_tokens(payload) or default_output
    estimate = cost_nano(Usage(prompt=prompt, candidates=output), price.rates_for(prompt))
    return max(estimate, floor_nano)


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


@dataclass(frozen=True)
class PriceInput:
    """Prices as an admin enters them: USD per 1M tokens (cached input defaults to input)."""

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    tier_threshold: int | None = None
    input_above: Decimal | None = None
    output_above: Decimal | None = None
    cached_input_above: Decimal | None = None


def upsert_price(session: Session, model: str, prices: PriceInput) -> ModelPrice:
    """Create or replace the prices of `model` (a bare model id)."""
    def nano(value: Decimal | None) -> int | None:
        return None if value is None else usd_to_nano(value)

    row = session.get(ModelPrice, model) or ModelPrice(model=model)
    row.input_nano, row.output_nano = nano(prices.input), nano(prices.output)
    row.cached_nano = nano(prices.cached_input if prices.cached_input is not None else prices.input)
    row.tier_threshold = prices.tier_threshold
    row.input_above_nano, row.output_above_nano = nano(prices.input_above), nano(prices.output_above)
    row.cached_above_nano = nano(prices.cached_input_above)
    session.add(row)
    return row
