"""Spend caps, tokens per minute and concurrency, enforced inside the hold.

A key whose policy has any of them takes its hold here instead of the one-statement fast
path (`vault.billing.holds`). One transaction first locks the owner's and the key's rows
(no-op UPDATEs: row locks on PostgreSQL, the write lock on SQLite), so two holds of one key are taken one
after the other on every worker and host; then counts what the key has in flight and
spent, refuses what a limit forbids, and takes the balance hold with the same conditional
UPDATEs as `ledger.reserve`, lowered to what is left of the cap. The `pending_holds` row
(always written here, 0 for a free call) carries the cap period and the request's tokens,
so what is in flight counts for the next call at once and settles (`ledger`) into
`key_spend` for the period it was held in.

    spend this period = key_spend[key, period] + Σ open holds of the key in the period
    tokens this minute = Σ tokens of its usage records finished in the last 60 s
                         + Σ tokens of its open holds (their prompt, estimated)
    in flight         = its open holds
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from vault.billing import ledger
from vault.billing.money import nano_to_json
from vault.errors import PaymentRequired, RateLimited, Unauthorized, policy_header
from vault.models import ApiKey, KeySpend, PendingHold, UsageRecord

api_keys, holds, records, spends = ApiKey.__table__, PendingHold.__table__, UsageRecord.__table__, KeySpend.__table__
WINDOW = timedelta(minutes=1)
users = ledger.users
# Row locks in the order settlements take them (`ledger.write_totals`: users, then api_keys),
# so a hold and a settlement of the same key never deadlock.
LOCK_USER = update(users).where(users.c.id == bindparam("user_id")).values(id=users.c.id)
LOCK_KEY = update(api_keys).where(api_keys.c.id == bindparam("api_key_id")).values(id=api_keys.c.id)


@dataclass(frozen=True)
class Quota:
    """What a key's hold must respect: its cap in the current period, its tokens per minute
    and its concurrency (None: no such limit), and this request's tokens."""

    api_key_id: int
    spend_cap_nano: int | None = None
    period: str | None = None  # the cap period now falls in, e.g. `day:2026-11-27`
    period_label: str = ""  # "per day", "per week", … for messages
    rate_limit_tpm: int | None = None
    max_concurrency: int | None = None
    tokens: int = 0


@dataclass(frozen=True)
class Standing:
    """Where a key stands against its limits right now."""

    in_flight: int
    tokens_this_minute: int
    spent_this_period: int
    oldest_in_window: datetime | None = None


def standing(session: Session, api_key_id: int, period: str | None, now: datetime) -> Standing:
    """The key's open holds, its tokens in the last minute and its spend in `period` (held included)."""
    open_holds = session.execute(
        select(func.count(holds.c.id), func.coalesce(func.sum(holds.c.tokens), 0))
        .where(holds.c.api_key_id == api_key_id)).one()
    settled = session.execute(
        select(func.coalesce(func.sum(records.c.total_tokens), 0), func.min(records.c.finished_at))
        .where(records.c.api_key_id == api_key_id, records.c.finished_at > now - WINDOW)).one()
    spent = 0
    if period is not None:
        spent = session.scalar(select(spends.c.spent_nano).where(spends.c.api_key_id == api_key_id,
                                                                   spends.c.period == period)) or 0
        spent += session.scalar(select(func.coalesce(func.sum(holds.c.amount_nano), 0))
                                .where(holds.c.api_key_id == api_key_id, holds.c.cap_period == period))
    return Standing(int(open_holds[0]), int(open_holds[1]) + int(settled[0]), int(spent), settled[1])


def admit(session: Session, quota: Quota, now: datetime, amount: int, minimum: int | None) -> tuple[int, int | None]:
    """Check the key's limits with its row locked; the (amount, minimum) the balance hold may take.

    `RateLimited` (429) for concurrency and tokens per minute, `PaymentRequired` (402) for a
    spent cap, each naming its policy. The hold is lowered to what is left of the cap.
    """
    if not session.execute(LOCK_KEY, {"api_key_id": quota.api_key_id}).rowcount:
        session.rollback()
        raise Unauthorized(ledger.GONE)
    now_standing = standing(session, quota.api_key_id, quota.period, now)
    if quota.max_concurrency is not None and now_standing.in_flight >= quota.max_concurrency:
        session.rollback()
        raise RateLimited(f"max_concurrency: this key may have {quota.max_concurrency} requests in flight at once; "
                          "retry when one has finished.", retry_after=1, headers=policy_header("max_concurrency"))
    if quota.rate_limit_tpm is not None and now_standing.tokens_this_minute >= quota.rate_limit_tpm:
        session.rollback()
        wait = 1
        if now_standing.oldest_in_window is not None:
            wait = max(1, math.ceil((now_standing.oldest_in_window + WINDOW - now).total_seconds()))
        raise RateLimited(f"rate_limit_tpm: this key's limit of {quota.rate_limit_tpm} tokens per minute is "
                          "reached.", retry_after=wait, headers=policy_header("rate_limit_tpm"))
    if quota.spend_cap_nano is None:
        return amount, minimum
    left = quota.spend_cap_nano - now_standing.spent_this_period
    cap_text = f"${nano_to_json(quota.spend_cap_nano)} {quota.period_label}".strip()
    if left <= 0:
        session.rollback()
        raise PaymentRequired(f"spend_cap: this key's spend cap of {cap_text} is spent.",
                              headers=policy_header("spend_cap"))
    if minimum is not None and left < minimum:
        session.rollback()
        raise PaymentRequired(f"spend_cap: what is left of this key's spend cap of {cap_text} cannot cover the "
                              "smallest cost of this request.", headers=policy_header("spend_cap"))
    return min(amount, left), minimum


def take(session: Session, quota: Quota, *, user_id: int, settlement_id: str, amount: int, minimum: int | None,
         row: dict, now: datetime, overdraft: int = 0, attempts: int = 5) -> int:
    """Admit the call against the key's limits and hold up to `amount` of the balance, in one
    transaction; commit and return what was held (`ledger.reserve`'s answers for the balance)."""
    row = row | {"cap_period": quota.period, "tokens": quota.tokens}
    for _ in range(attempts):
        if not session.execute(LOCK_USER, {"user_id": user_id}).rowcount:
            session.rollback()
            raise Unauthorized(ledger.GONE)
        held, least = admit(session, quota, now, amount, minimum)
        need = max(held, least or 0)
        if held > 0 and session.execute(ledger.RESERVE_FULL, {"user_id": user_id, "need": max(need - overdraft, 1),
                                                              "hold": held}).rowcount:
            return ledger.keep_hold(session, row, held)
        seen = session.execute(ledger.READ_BALANCE, {"user_id": user_id}).scalar_one_or_none()
        if seen is None:
            session.rollback()
            raise Unauthorized(ledger.GONE)
        if seen <= 0 or (least is not None and seen + overdraft < least):
            session.rollback()
            raise PaymentRequired(ledger.SPENT if seen <= 0 else ledger.TOO_LOW)
        if held == 0:  # a free call: no money held, but its row counts it in flight
            return ledger.keep_hold(session, row, 0)
        rest = {"user_id": user_id, "seen": seen, "left": -overdraft}
        if seen + overdraft < need and session.execute(ledger.TAKE_REST, rest).rowcount:
            return ledger.keep_hold(session, row, seen + overdraft)
        session.rollback()  # the balance moved under us: lock and count again
    raise PaymentRequired("Your balance is changing too fast to reserve; retry.")
