"""Holds nobody settled: their worker died, or the database stayed away through every retry.

Once a hold expires, `sweep_abandoned` settles it as an `abandoned` request at its estimate
(never more than the hold), through the ledger's own `settle`, so the books still balance.
"""

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from vault.billing.ledger import Settlement, holds, settle
from vault.models import PendingHold

log = logging.getLogger(__name__)

ABANDONED = "never settled: its worker stopped or the database stayed unreachable"
LONGEST_MS = 2**31 - 1


def sweep_abandoned(session: Session, now: datetime, batch: int = 500) -> int:
    """Settle every hold past its expiry as an abandoned request; return how many this call settled.

    Safe with any number of workers and hosts at once: each hold is claimed and settled in
    its own transaction (on PostgreSQL `FOR UPDATE SKIP LOCKED`, so a hold another sweeper
    is settling is skipped), and the unique settlement id makes a second settlement
    impossible. A request that does finish after its hold was swept finds itself settled
    and changes nothing. Holds are read in batches of `batch`, each batch after the last, so
    a sweep always ends; a database error ends it early (the rest wait for the next sweep).
    """
    swept, after = 0, 0
    while True:
        due = session.scalars(select(holds.c.id).where(holds.c.expires_at <= now, holds.c.id > after)
                              .order_by(holds.c.id).limit(batch)).all()
        session.rollback()
        for hold_id in due:
            try:
                swept += settle_abandoned(session, hold_id, now)
            except SQLAlchemyError as exc:
                session.rollback()
                log.warning("sweeper stopped at hold %s (%s); the rest stay pending for the next sweep", hold_id,
                            type(exc).__name__)
                return swept
        if len(due) < batch:
            return swept
        after = due[-1]


def settle_abandoned(session: Session, hold_id: int, now: datetime) -> bool:
    """Claim one expired hold and settle it at its estimate (at most the hold)."""
    query = select(PendingHold).where(PendingHold.id == hold_id, PendingHold.expires_at <= now)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    hold = session.scalars(query).one_or_none()
    if hold is None:
        session.rollback()  # settled meanwhile, or another worker is on it
        return False
    entry = abandoned_settlement(hold, now)
    settled = settle(session, entry)
    if settled:
        log.warning("settlement %s: abandoned hold of user %s settled at its estimate %s of %s nano-USD",
                    entry.settlement_id, entry.user_id, entry.cost, entry.hold)
    return settled


def abandoned_settlement(hold: PendingHold, now: datetime) -> Settlement:
    """The settlement of a request nobody finished: status 0 (unknown), cost = its estimate."""
    elapsed = int((now - hold.created_at).total_seconds() * 1000)
    return Settlement(
        settlement_id=hold.settlement_id, user_id=hold.user_id, api_key_id=hold.api_key_id, endpoint=hold.endpoint,
        model=hold.model, status=0, started_at=hold.created_at, finished_at=now,
        total_ms=max(0, min(elapsed, LONGEST_MS)), ending="abandoned", usage_source="estimated",
        cost=min(hold.estimate_nano, hold.amount_nano), hold=hold.amount_nano, error=ABANDONED,
        client_request_id=hold.client_request_id, cap_period=hold.cap_period,
    )
