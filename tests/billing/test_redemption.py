"""Redemption codes, the plain logic: minting stores hashes only, a claim pays once and lands in the ledger."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from vault.billing import balances, redemption
from vault.billing.money import usd_to_nano
from vault.clock import utcnow
from vault.errors import Conflict, Gone, NotFound, ValidationFailed
from vault.extensions import db
from vault.models import AlertEvent, BalanceAdjustment, RedemptionCode, User
from vault.runtime import runtime


@pytest.fixture
def minted(account):
    """`minted(amount="5", count=1, expires_at=None)`: a committed batch."""

    def build(amount: str = "5", count: int = 1, expires_at=None, note: str = "") -> redemption.MintedBatch:
        batch = redemption.mint(db.session, None, usd_to_nano(amount), count, expires_at, note, utcnow())
        db.session.commit()
        return batch

    return build


def test_mint_stores_only_hashes_and_prefixes(minted):
    batch = minted(amount="2.5", count=20, note="workshop")
    assert len(batch.codes) == len(set(batch.codes)) == 20
    rows = db.session.scalars(select(RedemptionCode).where(RedemptionCode.batch == batch.batch)).all()
    assert len(rows) == 20
    by_hash = {row.code_hash: row for row in rows}
    for code in batch.codes:
        assert re.fullmatch(r"gvr-[A-Za-z0-9_-]{27}", code)
        row = by_hash[redemption.hash_code(code)]
        assert code.startswith(row.prefix) and len(row.prefix) == 10 and row.amount_nano == 2_500_000_000
        assert code not in repr({column: getattr(row, column.key) for column in RedemptionCode.__table__.columns})
        assert (row.note, row.redeemed_at, row.state(utcnow())) == ("workshop", None, "unused")


@pytest.mark.parametrize(("amount", "count", "days", "field"), [
    ("0", 1, None, "amount"), ("-1", 1, None, "amount"), ("1000000.01", 1, None, "amount"),
    ("1", 0, None, "count"), ("1", 1001, None, "count"), ("1", 1, -1, "expires_at"),
])
def test_mint_refuses_what_no_batch_may_be(app, amount, count, days, field):
    expires_at = utcnow() + timedelta(days=days) if days is not None else None
    with pytest.raises(ValidationFailed) as refused:
        redemption.mint(db.session, None, usd_to_nano(amount), count, expires_at, "", utcnow())
    assert field in refused.value.fields
    assert db.session.scalar(select(db.func.count()).select_from(RedemptionCode)) == 0


def test_a_claim_credits_once_and_lands_in_the_ledger(account, minted):
    user_id, other_id = account("1.00"), account("1.00")
    code = minted(amount="5").codes[0]
    done = redemption.redeem(db.session, user_id, f"  {code}\n", utcnow())
    db.session.commit()
    assert (done.amount_nano, done.balance_nano, done.prefix) == (usd_to_nano(5), usd_to_nano(6), code[:10])
    adjustment = db.session.scalars(select(BalanceAdjustment).where(BalanceAdjustment.kind == "redeem")).one()
    assert (adjustment.user_id, adjustment.amount_nano, adjustment.admin_id) == (user_id, usd_to_nano(5), None)
    assert code[:10] in adjustment.reason and code not in adjustment.reason
    row = db.session.get(RedemptionCode, done.code_id)
    assert (row.redeemed_by, row.state(utcnow())) == (user_id, "redeemed")
    for caller in (user_id, other_id):  # used is used, whoever asks
        with pytest.raises(Conflict):
            redemption.redeem(db.session, caller, code, utcnow())
    db.session.expire_all()
    assert db.session.get(User, user_id).balance_nano == usd_to_nano(6)
    assert db.session.get(User, other_id).balance_nano == usd_to_nano(1)
    assert all(check.consistent for check in balances.check_balances(db.session))


def test_unknown_and_expired_codes_change_nothing(account, minted, db_snapshot):
    user_id = account()
    soon = utcnow() + timedelta(seconds=30)
    code = minted(expires_at=soon).codes[0]
    before = db_snapshot()
    with pytest.raises(NotFound):
        redemption.redeem(db.session, user_id, code[:-1] + ("A" if code[-1] != "A" else "B"), utcnow())
    with pytest.raises(Gone):
        redemption.redeem(db.session, user_id, code, soon)  # the moment it expires
    with pytest.raises(Gone):
        redemption.redeem(db.session, user_id, code, soon + timedelta(days=1))
    assert db_snapshot() == before
    done = redemption.redeem(db.session, user_id, code, soon - timedelta(seconds=1))
    db.session.commit()
    assert done.amount_nano == usd_to_nano(5)


def test_search_filters_by_state_and_batch(account, minted):
    user_id = account()
    now = utcnow()
    fresh = minted(count=3)
    old = minted(count=2, expires_at=now + timedelta(seconds=5))
    redemption.redeem(db.session, user_id, fresh.codes[0], now)
    db.session.commit()
    later = now + timedelta(seconds=10)
    counts = {state: redemption.search(db.session, later, state)[1] for state in redemption.STATES}
    assert counts == {"unused": 2, "redeemed": 1, "expired": 2}
    rows, total = redemption.search(db.session, later, batch=old.batch, per_page=1)
    assert total == 2 and len(rows) == 1 and rows[0].batch == old.batch
    redeemed, _ = redemption.search(db.session, later, "redeemed")
    assert redemption.emails(db.session, redeemed) == {user_id: db.session.get(User, user_id).email}


def test_a_redemption_rearms_the_low_balance_alert(app, client, make_user, auth_headers):
    """Below the threshold (alerted), the user redeems a code and is above it again; when the balance then
    falls below once more, that is a new crossing and must alert -- even if no monitor round happened to
    run while the balance was up (the monitor only re-arms users it sees above the threshold)."""
    admin = make_user(email="root@example.com", is_admin=True)
    user = make_user(balance="0.50")
    admin_headers = auth_headers(admin)
    assert client.patch(f"/admin/api/users/{user.id}", json={"low_balance_threshold": "1"},
                        headers=admin_headers).status_code == 200
    alerts = runtime().alerts
    alerts.run_once()
    assert db.session.scalar(db.select(db.func.count()).select_from(AlertEvent)) == 1

    code = client.post("/admin/api/redemption-codes", json={"amount": "5", "count": 1},
                       headers=admin_headers).get_json()["codes"][0]
    redeemed = client.post("/api/redeem", json={"code": code}, headers=auth_headers(user))
    assert redeemed.status_code == 200 and redeemed.get_json()["balance"] == 5.5
    # The user spends most of it again before the monitor's next round (settlements, or an admin correction).
    spent = client.patch(f"/admin/api/users/{user.id}", json={"balance_delta": "-5", "reason": "spent"},
                         headers=admin_headers)
    assert spent.status_code == 200
    alerts.run_once()
    db.session.expire_all()
    assert db.session.get(User, user.id).balance_nano == 500_000_000
    kinds = [event.kind for event in db.session.scalars(db.select(AlertEvent).order_by(AlertEvent.id))]
    assert kinds == ["low_balance", "low_balance"], "the second crossing below the threshold was never alerted"
