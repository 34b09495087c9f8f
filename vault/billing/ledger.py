"""The ledger: holds taken before forwarding, and settlement after.

Every amount is integer nano-USD (see `vault.billing.money`). Balances only move through
single conditional UPDATE statements, never a read-modify-write in Python, so concurrent
requests on SQLite and PostgreSQL add up exactly.

Each request is keyed by a settlement id the server makes. Taking a hold writes a
`pending_holds` row in the same transaction; settling deletes that row, writes the usage
record and refunds `hold − cost` in one transaction. So at every commit, for every user:

    balance = Σ adjustments − Σ settled costs − Σ open holds

which `balances.check_balances` verifies. A hold nobody settles (its worker died, or the
database stayed away through every retry) is settled by `abandoned.sweep_abandoned` once it
expires; admins' changes to balances are in `balances`.
"""

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vault.billing.prices import Rates
from vault.billing.usage import Usage
from vault.clock import utcnow
from vault.errors import PaymentRequired, Unauthorized
from vault.models import ApiKey, KeySpend, PendingHold, UpstreamKey, UsageRecord, User

log = logging.getLogger(__name__)

users, api_keys, upstream_keys = User.__table__, ApiKey.__table__, UpstreamKey.__table__
holds, records, spends = PendingHold.__table__, UsageRecord.__table__, KeySpend.__table__

RESERVE_FULL = (
    update(users)
    .where(users.c.id == bindparam("user_id"), users.c.balance_nano >= bindparam("need"))
    .values(balance_nano=users.c.balance_nano - bindparam("hold"))
)
TAKE_REST = (
    update(users)
    .where(users.c.id == bindparam("user_id"), users.c.balance_nano == bindparam("seen"))
    .values(balance_nano=bindparam("left"))
)
READ_BALANCE = select(users.c.balance_nano).where(users.c.id == bindparam("user_id"))
INSERT_HOLD = insert(holds)
SPENT = "Your balance is spent; ask an admin to add credit."
GONE = "Invalid or revoked Vault key."  # its owner was deleted
TOO_LOW = "Your balance cannot cover the smallest cost of this request; ask an admin to add credit."


def reserve(session: Session, user_id: int, settlement_id: str, amount: int, minimum: int | None = None, *,
            endpoint: str, model: str, expires_at: datetime, estimate_nano: int = 0, api_key_id: int | None = None,
            client_request_id: str | None = None, overdraft: int = 0, attempts: int = 5) -> int:
    """Hold up to `amount` of the balance for request `settlement_id`, commit, return what was held.

    One conditional UPDATE takes the full amount when the balance covers it. Otherwise a
    positive balance is taken whole with a compare-and-swap on the value just read (so a
    concurrent change makes it retry, never double-spend). The `pending_holds` row is
    written in the same transaction; a free call (`amount` 0) holds nothing and writes none.
    `PaymentRequired` when the balance is spent, or below `minimum` when that is given.
    `estimate_nano` is what the sweeper charges should the request never be settled.
    `overdraft` is how far below zero a hold may take a (positive) balance.
    """
    need = max(amount, minimum or 0)
    row = {"settlement_id": settlement_id, "client_request_id": (client_request_id or None) and client_request_id[:64],
           "user_id": user_id, "api_key_id": api_key_id, "endpoint": endpoint[:64], "model": model[:128],
           "estimate_nano": estimate_nano, "created_at": utcnow(), "expires_at": expires_at}
    for _ in range(attempts):
        full = {"user_id": user_id, "need": max(need - overdraft, 1), "hold": amount}
        if amount > 0 and session.execute(RESERVE_FULL, full).rowcount:
            return keep_hold(session, row, amount)
        seen = session.execute(READ_BALANCE, {"user_id": user_id}).scalar_one_or_none()
        if seen is None:
            session.rollback()
            raise Unauthorized(GONE)
        if seen <= 0 or (minimum is not None and seen + overdraft < minimum):
            session.rollback()
            raise PaymentRequired(SPENT if seen <= 0 else TOO_LOW)
        if amount == 0:
            session.rollback()
            return 0
        rest = {"user_id": user_id, "seen": seen, "left": -overdraft}
        if seen + overdraft < need and session.execute(TAKE_REST, rest).rowcount:
            return keep_hold(session, row, seen + overdraft)
        session.rollback()  # the balance moved under us (or grew enough for the full amount): again
    raise PaymentRequired("Your balance is changing too fast to reserve; retry.")


def keep_hold(session: Session, row: dict, amount: int) -> int:
    """Record the hold just taken from the balance, in the same transaction, and commit."""
    session.execute(INSERT_HOLD, row | {"amount_nano": amount})
    session.commit()
    return amount


@dataclass
class Settlement:
    """Everything the ledger keeps about one finished request."""

    settlement_id: str
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
    usage_source: str = "reported"
    rates: Rates = field(default_factory=lambda: Rates(0, 0, 0))
    cost: int = 0
    hold: int = 0
    first_byte_ms: int | None = None
    error: str | None = None
    client_request_id: str | None = None
    cap_period: str | None = None  # the key's spend-cap period its hold counted in (from the hold row)
    image_count: int = 0  # images an images call delivered (what it was charged per image for)
    fallback_from: str | None = None  # the model first routed to, when a fallback model served the call

    def record_values(self) -> dict:
        usage = self.usage
        return {
            "settlement_id": self.settlement_id, "client_request_id": (self.client_request_id or None) and
            self.client_request_id[:64], "user_id": self.user_id, "api_key_id": self.api_key_id,
            "upstream_key_id": self.upstream_key_id, "endpoint": self.endpoint, "model": self.model[:128],
            "priced_model": self.priced_model[:128], "status": self.status, "streamed": self.streamed,
            "ending": self.ending, "usage_source": self.usage_source[:16], "prompt_tokens": usage.prompt,
            "cached_tokens": usage.cached, "tool_prompt_tokens": usage.tool_prompt,
            "candidates_tokens": usage.candidates, "thoughts_tokens": usage.thoughts, "output_tokens": usage.output,
            "total_tokens": usage.total, "price_input_nano": self.rates.input,
            "price_output_nano": self.rates.output, "price_cached_nano": self.rates.cached, "cost_nano": self.cost,
            "hold_nano": self.hold, "first_byte_ms": self.first_byte_ms, "total_ms": self.total_ms,
            "started_at": self.started_at, "finished_at": self.finished_at,
            "error": (self.error or None) and self.error[:255], "image_count": self.image_count,
            "fallback_from": (self.fallback_from or None) and self.fallback_from[:128],
        }


DELETE_HOLD = delete(holds).where(holds.c.settlement_id == bindparam("settlement_id"))
INSERT_RECORD = insert(records)
SETTLE_USER = (
    update(users).where(users.c.id == bindparam("user_id"))
    .values(balance_nano=users.c.balance_nano + bindparam("refund"),
            request_count=users.c.request_count + bindparam("count"),
            total_tokens=users.c.total_tokens + bindparam("tokens"), spend_nano=users.c.spend_nano + bindparam("cost"))
)
SETTLE_API_KEY = (
    update(api_keys).where(api_keys.c.id == bindparam("api_key_id"))
    .values(request_count=api_keys.c.request_count + bindparam("count"),
            prompt_tokens=api_keys.c.prompt_tokens + bindparam("input"),
            output_tokens=api_keys.c.output_tokens + bindparam("output"),
            total_tokens=api_keys.c.total_tokens + bindparam("tokens"),
            spend_nano=api_keys.c.spend_nano + bindparam("cost"), last_used_at=bindparam("moment"))
)
SETTLE_UPSTREAM_KEY = (
    update(upstream_keys).where(upstream_keys.c.id == bindparam("upstream_key_id"))
    .values(request_count=upstream_keys.c.request_count + bindparam("count"), last_used_at=bindparam("moment"))
)


def settle(session: Session, entry: Settlement) -> bool:
    """Replace the request's hold by its usage record, in one transaction; True if written.

    What is refunded is what the hold row says was held, not what the request believes: a
    hold whose commit reply was lost (the request saw an error) is still given back.

    False (and nothing changed) only when a record with this settlement id exists: the
    request is already settled. A reference to a row deleted meanwhile (a Vault key or an
    upstream key) is dropped rather than losing the charge; any other database error
    propagates for the caller to retry, and the pending hold stays until then.
    """
    try:
        write_settlement(session, entry)
    except IntegrityError:
        session.rollback()
        if is_settled(session, entry.settlement_id):
            return False
        kept = without_missing_references(session, entry)
        if kept is entry:
            raise
        log.warning("settlement %s: the Vault key or upstream key it names is gone; recorded without it",
                    entry.settlement_id)
        return settle(session, kept)
    return True


def write_settlement(session: Session, entry: Settlement) -> None:
    # The hold goes first: on PostgreSQL a concurrent sweeper holding it (FOR UPDATE) makes
    # this wait, then find the record written, instead of the two deadlocking.
    held = session.execute(DELETE_HOLD.returning(holds.c.amount_nano, holds.c.cap_period),
                           {"settlement_id": entry.settlement_id}).first()
    entry = replace(entry, hold=held[0] if held else 0, cap_period=held[1] if held else None)
    session.execute(INSERT_RECORD, entry.record_values())
    write_totals(session, [entry])
    session.commit()


def settle_batch(session: Session | Connection, entries: list[Settlement]) -> None:
    """Replace many holds by their usage records in one transaction (the settlement writer's batch).

    All or nothing: `IntegrityError` when any of them is already settled or names a key
    deleted meanwhile, with nothing written (the writer then settles them one by one).
    """
    if not entries:
        return
    ids = sorted(entry.settlement_id for entry in entries)
    held = {row[0]: row[1:] for row in session.execute(
        delete(holds).where(holds.c.settlement_id.in_(ids))
        .returning(holds.c.settlement_id, holds.c.amount_nano, holds.c.cap_period))}
    entries = [replace(entry, hold=held.get(entry.settlement_id, (0,))[0],
                       cap_period=held.get(entry.settlement_id, (0, None))[1]) for entry in entries]
    session.execute(INSERT_RECORD, [entry.record_values() for entry in entries])
    write_totals(session, entries)
    session.commit()


def write_totals(session: Session | Connection, entries: list[Settlement]) -> None:
    """Move the balances and counters of users, Vault keys and upstream keys by what `entries` cost,
    one UPDATE per row touched, rows in id order (so concurrent writers never deadlock)."""
    by_user: dict[int, dict] = {}
    by_key: dict[int, dict] = {}
    by_upstream: dict[int, dict] = {}
    for entry in entries:
        usage = entry.usage
        user = by_user.setdefault(entry.user_id, {"user_id": entry.user_id, "refund": 0, "count": 0, "tokens": 0,
                                                  "cost": 0})
        _add(user, refund=entry.hold - entry.cost, count=1, tokens=usage.total, cost=entry.cost)
        if entry.api_key_id is not None:
            key = by_key.setdefault(entry.api_key_id, {"api_key_id": entry.api_key_id, "count": 0, "input": 0,
                                                       "output": 0, "tokens": 0, "cost": 0,
                                                       "moment": entry.finished_at})
            _add(key, count=1, input=usage.prompt + usage.tool_prompt, output=usage.output, tokens=usage.total,
                 cost=entry.cost)
            key["moment"] = max(key["moment"], entry.finished_at)
        if entry.upstream_key_id is not None:
            upstream = by_upstream.setdefault(entry.upstream_key_id, {"upstream_key_id": entry.upstream_key_id,
                                                                      "count": 0, "moment": entry.finished_at})
            upstream["count"] += 1
            upstream["moment"] = max(upstream["moment"], entry.finished_at)
    for statement, rows in ((SETTLE_USER, by_user), (SETTLE_API_KEY, by_key), (SETTLE_UPSTREAM_KEY, by_upstream)):
        if rows:
            session.execute(statement, [rows[row_id] for row_id in sorted(rows)])
    write_key_spend(session, entries)


def write_key_spend(session: Session | Connection, entries: list[Settlement]) -> None:
    """Add what capped keys' calls cost to their period's `key_spend` row (made if missing)."""
    spent: dict[tuple[int, str], int] = {}
    for entry in entries:
        if entry.cap_period is not None and entry.api_key_id is not None:
            place = (entry.api_key_id, entry.cap_period)
            spent[place] = spent.get(place, 0) + entry.cost
    if not spent:
        return
    dialect = (session.get_bind() if hasattr(session, "get_bind") else session).dialect.name
    upsert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    for (api_key_id, period), cost in sorted(spent.items()):
        statement = upsert(spends).values(api_key_id=api_key_id, period=period, spent_nano=cost)
        session.execute(statement.on_conflict_do_update(
            index_elements=[spends.c.api_key_id, spends.c.period],
            set_={"spent_nano": spends.c.spent_nano + statement.excluded.spent_nano}))


def _add(totals: dict, **amounts: int) -> None:
    for name, amount in amounts.items():
        totals[name] += amount


def is_settled(session: Session, settlement_id: str) -> bool:
    """Whether a usage record with this settlement id exists."""
    found = session.scalar(select(records.c.id).where(records.c.settlement_id == settlement_id))
    session.rollback()
    return found is not None


def without_missing_references(session: Session, entry: Settlement) -> Settlement:
    """`entry` without the key ids whose rows no longer exist (itself if none is missing)."""
    missing = {}
    for name, table in (("api_key_id", api_keys), ("upstream_key_id", upstream_keys)):
        key_id = getattr(entry, name)
        if key_id is not None and session.scalar(select(table.c.id).where(table.c.id == key_id)) is None:
            missing[name] = None
    session.rollback()
    return replace(entry, **missing) if missing else entry
