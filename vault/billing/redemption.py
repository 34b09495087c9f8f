"""Top-ups by redemption code: admins mint codes worth an amount, a user claims each one once.

A code is `gvr-` and 20 random url-safe bytes. Only its SHA-256 hash is stored, with a short
visible prefix, so the plaintext exists in the answer that mints it and nowhere else.

A claim is one conditional UPDATE (still unredeemed, not expired) that marks the code
redeemed; only the request whose UPDATE matched credits the balance and writes the
`BalanceAdjustment` of kind `redeem`, in the same transaction — re-arming the user's
low-balance alert if the balance is back at their threshold. However many requests race
for one code, on SQLite or PostgreSQL, it pays out once and the ledger stays balanced.
A failed claim says why in the same words for every caller: unknown (404), used (409) or
expired (410) — a code someone else redeemed is used for you too.
"""

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from vault.billing.balances import rearm_low_balance
from vault.clock import isoformat
from vault.errors import Conflict, Gone, NotFound, ValidationFailed
from vault.models import BalanceAdjustment, RedemptionCode, User
from vault.security import hash_vault_key

CODE_PREFIX = "gvr-"
CODE_RANDOM_BYTES = 20
VISIBLE_PREFIX_LENGTH = len(CODE_PREFIX) + 6
MAX_BATCH = 1000
MAX_AMOUNT_NANO = 1_000_000 * 10**9
STATES = ("unused", "redeemed", "expired")
UNKNOWN = "No such redemption code: check that it was copied whole."
USED = "This redemption code has already been redeemed."
EXPIRED = "This redemption code has expired."

codes, users = RedemptionCode.__table__, User.__table__


@dataclass(frozen=True)
class MintedBatch:
    """Codes just minted together; `codes` (the plaintexts) must be shown once and then forgotten."""

    batch: str
    codes: list[str]
    records: list[RedemptionCode]


@dataclass(frozen=True)
class Redemption:
    """A successful claim: which code, what it added and the balance after it."""

    code_id: int
    prefix: str
    amount_nano: int
    balance_nano: int


def new_code() -> str:
    """A fresh plaintext code."""
    return CODE_PREFIX + secrets.token_urlsafe(CODE_RANDOM_BYTES)


def hash_code(code: str) -> str:
    """The SHA-256 hex digest a code is stored and looked up under (surrounding blanks ignored)."""
    return hash_vault_key(code.strip())


def mint(session: Session, admin_id: int | None, amount_nano: int, count: int, expires_at: datetime | None,
         note: str, now: datetime) -> MintedBatch:
    """Add `count` codes worth `amount_nano` each, as one batch; the caller commits.

    `ValidationFailed` for an amount not above zero (or above a million USD), a count outside
    1..1000, or an expiry not after `now`.
    """
    check_mint(amount_nano, count, expires_at, now)
    batch = secrets.token_hex(8)
    plaintexts = [new_code() for _ in range(count)]
    records = [RedemptionCode(code_hash=hash_code(code), prefix=code[:VISIBLE_PREFIX_LENGTH], amount_nano=amount_nano,
                              note=note.strip()[:255], batch=batch, created_by=admin_id, created_at=now,
                              expires_at=expires_at) for code in plaintexts]
    session.add_all(records)
    session.flush()
    return MintedBatch(batch, plaintexts, records)


def batch_summary(minted: MintedBatch) -> dict:
    """What the audit trail keeps of a batch: everything but the codes."""
    first = minted.records[0]
    return {"batch": minted.batch, "count": len(minted.codes), "amount_nano": first.amount_nano,
            "expires_at": isoformat(first.expires_at), "note": first.note}


def check_mint(amount_nano: int, count: int, expires_at: datetime | None, now: datetime) -> None:
    """Refuse what no batch may be, naming each field at fault."""
    fields = {}
    if not 0 < amount_nano <= MAX_AMOUNT_NANO:
        fields["amount"] = "must be more than 0 and at most 1000000 USD"
    if not 1 <= count <= MAX_BATCH:
        fields["count"] = f"must be between 1 and {MAX_BATCH}"
    if expires_at is not None and expires_at <= now:
        fields["expires_at"] = "must be in the future"
    if fields:
        raise ValidationFailed(fields=fields)


def claim_statement(code_hash: str, user_id: int, now: datetime):
    """The one conditional UPDATE that claims a code: it matches only while the code is unused."""
    return (update(codes)
            .where(codes.c.code_hash == code_hash, codes.c.redeemed_at.is_(None),
                   or_(codes.c.expires_at.is_(None), codes.c.expires_at > now))
            .values(redeemed_by=user_id, redeemed_at=now)
            .returning(codes.c.id, codes.c.prefix, codes.c.amount_nano))


def redeem(session: Session, user_id: int, code: str, now: datetime) -> Redemption:
    """Claim `code` for `user_id` and credit its amount, recorded in the ledger; the caller commits.

    `NotFound`, `Conflict` or `Gone` (with nothing changed) when the code is unknown, used or
    expired.
    """
    code_hash = hash_code(code)
    claimed = session.execute(claim_statement(code_hash, user_id, now)).first()
    if claimed is None:
        raise refusal(session, code_hash, now)
    code_id, prefix, amount = claimed
    session.execute(update(users).where(users.c.id == user_id).values(balance_nano=users.c.balance_nano + amount))
    rearm_low_balance(session, user_id)
    session.add(BalanceAdjustment(user_id=user_id, admin_id=None, kind="redeem", amount_nano=amount,
                                  reason=f"redemption code {prefix}…", created_at=now))
    session.flush()
    balance = session.scalar(select(users.c.balance_nano).where(users.c.id == user_id))
    return Redemption(code_id, prefix, amount, int(balance))


def refusal(session: Session, code_hash: str, now: datetime) -> NotFound | Conflict | Gone:
    """Why a claim matched nothing: the same answer whoever asks. Ends the transaction (on SQLite
    the failed UPDATE holds the write lock other claims wait for)."""
    row = session.execute(select(codes.c.redeemed_at, codes.c.expires_at).where(codes.c.code_hash == code_hash)).first()
    session.rollback()
    if row is None:
        return NotFound(UNKNOWN)
    if row.redeemed_at is not None:
        return Conflict(USED)
    return Gone(EXPIRED)


def state_filter(state: str, now: datetime):
    """The WHERE clause of codes in `state` at `now`."""
    unexpired = or_(codes.c.expires_at.is_(None), codes.c.expires_at > now)
    if state == "redeemed":
        return codes.c.redeemed_at.is_not(None)
    if state == "expired":
        return codes.c.redeemed_at.is_(None) & ~unexpired
    return codes.c.redeemed_at.is_(None) & unexpired


def search(session: Session, now: datetime, state: str = "", batch: str = "", page: int = 1,
           per_page: int = 50) -> tuple[list[RedemptionCode], int]:
    """A page of codes, newest first, filtered by state and batch; and how many match in all."""
    query = select(RedemptionCode)
    if state:
        query = query.where(state_filter(state, now))
    if batch:
        query = query.where(RedemptionCode.batch == batch)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    found = session.scalars(query.order_by(RedemptionCode.id.desc()).limit(per_page).offset((page - 1) * per_page))
    return list(found), int(total)


def emails(session: Session, rows: list[RedemptionCode]) -> dict[int, str]:
    """The emails of the users who minted or redeemed `rows`, in one query."""
    ids = {user_id for row in rows for user_id in (row.created_by, row.redeemed_by) if user_id is not None}
    if not ids:
        return {}
    return {row.id: row.email for row in session.execute(select(users.c.id, users.c.email).where(users.c.id.in_(ids)))}
