"""Prices, holds, settlement and the ledger, on SQLite and PostgreSQL."""

import threading
import uuid

import pytest
from sqlalchemy.exc import IntegrityError

from tests.billing.books import (
    assert_books_balance,
    balance_of,
    open_holds,
    records,
    settle,
    settlement,
    take_hold,
)
from vault import models
from vault.billing import balances
from vault.billing.money import usd_to_nano
from vault.billing.prices import Price, Rates, cost_nano, model_candidates
from vault.billing.usage import Usage
from vault.clock import utcnow
from vault.errors import PaymentRequired
from vault.extensions import db
from vault.models import BalanceAdjustment, User
from vault.runtime import runtime

FLASH = Rates(input=usd_to_nano("0.30"), output=usd_to_nano("2.50"), cached=usd_to_nano("0.03"))


def test_cost_is_exact_integer_nano_usd():
    usage = Usage(prompt=1_000_000, cached=400_000, tool_prompt=10, candidates=1000, thoughts=500)
    # 600,010 uncached+tool at $0.30, 400,000 cached at $0.03, 1,500 output at $2.50 per 1M
    assert cost_nano(usage, FLASH) == 180_003_000 + 12_000_000 + 3_750_000
    assert cost_nano(Usage(prompt=1), Rates(75_000_000, 0, 0)) == 75
    assert cost_nano(Usage(prompt=1), Rates(1, 0, 0)) == 0  # rounds half up below a nano-USD


def test_tiered_prices_apply_above_the_threshold():
    pro = Price("gemini-2.5-pro", Rates(1, 10, 1), tier_threshold=200_000, above=Rates(2, 15, 2))
    assert pro.rates_for(200_000) == Rates(1, 10, 1)
    assert pro.rates_for(200_001) == Rates(2, 15, 2)


@pytest.mark.parametrize(("given", "found"), [
    ("models/gemini-2.5-flash", "gemini-2.5-flash"),
    ("gemini-flash-latest", "gemini-2.5-flash"),
    ("gemini-2.5-flash-latest", "gemini-2.5-flash"),
    ("gemini-2.0-flash-001", "gemini-2.0-flash"),
])
def test_model_names_are_normalised(given, found):
    assert found in model_candidates(given)


def test_price_book_reads_the_seeded_table_and_falls_back(app):
    db.session.add(models.ModelPrice(model="gemini-2.5-flash", input_nano=FLASH.input, output_nano=FLASH.output,
                                      cached_nano=FLASH.cached))
    db.session.commit()
    book = runtime().prices
    book.refresh()
    assert book.lookup("models/gemini-2.5-flash-latest").base == FLASH
    assert book.lookup("gemini-unknown").model == "fallback"


def test_reserve_takes_the_hold_or_what_is_left(account):
    user_id = account("0.000005")
    assert take_hold(user_id, 2000)[1] == 2000
    assert balance_of(user_id) == 3000
    assert take_hold(user_id, 10_000)[1] == 3000
    assert balance_of(user_id) == 0
    with pytest.raises(PaymentRequired):
        take_hold(user_id, 1)
    with pytest.raises(PaymentRequired):
        take_hold(user_id, 0)
    assert [hold.amount_nano for hold in open_holds(user_id)] == [2000, 3000]
    assert_books_balance()


def test_reserve_refuses_a_balance_below_the_minimum(account):
    user_id = account("0.000005")
    with pytest.raises(PaymentRequired):
        take_hold(user_id, 10_000, minimum=6000)
    assert balance_of(user_id) == 5000 and open_holds(user_id) == []
    assert take_hold(user_id, 10_000, minimum=5000)[1] == 5000
    assert balance_of(user_id) == 0
    assert_books_balance()


def test_free_calls_hold_nothing_and_write_no_hold(account):
    user_id = account("0.000005")
    assert take_hold(user_id, 0)[1] == 0
    assert open_holds(user_id) == [] and balance_of(user_id) == 5000


def test_concurrent_reserves_never_overspend(account):
    user_id = account("0.000100")  # 100,000 nano-USD
    taken, refused, lock = [], [], threading.Lock()
    sessions = runtime().session_factory

    def worker():
        for _ in range(10):
            try:
                amount = take_hold(user_id, 1500, sessions=sessions)[1]
                with lock:
                    taken.append(amount)
            except PaymentRequired:
                with lock:
                    refused.append(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(taken) == 100_000 and balance_of(user_id) == 0
    assert len(taken) + len(refused) == 80
    assert sum(hold.amount_nano for hold in open_holds(user_id)) == 100_000
    assert_books_balance()


def test_settle_moves_balance_and_counters_once(account, make_api_key):
    user_id = account("1.00")
    key = make_api_key(db.session.get(User, user_id)).record
    settlement_id, held = take_hold(user_id, 5000, api_key_id=key.id)
    entry = settlement(user_id, settlement_id=settlement_id, api_key_id=key.id, hold=held, cost=1234,
                       usage=Usage(prompt=10, cached=2, tool_prompt=1, candidates=3, thoughts=4, total=18))
    assert settle(entry) is True
    assert settle(entry) is False  # idempotent by settlement id
    db.session.expire_all()
    user, key = db.session.get(User, user_id), db.session.get(type(key), key.id)
    assert user.balance_nano == 10**9 - 1234
    assert (user.request_count, user.total_tokens, user.spend_nano) == (1, 18, 1234)
    assert (key.request_count, key.prompt_tokens, key.output_tokens, key.total_tokens, key.spend_nano) == (
        1, 11, 7, 18, 1234)
    assert len(records()) == 1 and open_holds() == []
    assert_books_balance()


def test_settlement_replaces_the_hold_in_one_transaction(account):
    user_id = account("1.00")
    settlement_id, held = take_hold(user_id, 7000)
    assert [hold.settlement_id for hold in open_holds(user_id)] == [settlement_id]
    assert_books_balance()
    settle(settlement(user_id, settlement_id=settlement_id, hold=held, cost=9000, usage_source="estimated"))
    (record,) = records(user_id)
    assert (record.settlement_id, record.hold_nano, record.cost_nano, record.usage_source) == (
        settlement_id, 7000, 9000, "estimated")
    assert open_holds(user_id) == [] and balance_of(user_id) == 10**9 - 9000
    assert_books_balance()


def test_a_reference_to_a_row_that_is_gone_is_billed_not_read_as_a_duplicate(account):
    """An IntegrityError other than the settlement id's (here a foreign key) never makes a request free."""
    user_id = account("1.00")
    settlement_id, held = take_hold(user_id, 5000)
    assert settle(settlement(user_id, settlement_id=settlement_id, hold=held, cost=1234, upstream_key_id=987_654,
                             api_key_id=876_543)) is True
    (record,) = records(user_id)
    assert (record.cost_nano, record.upstream_key_id, record.api_key_id) == (1234, None, None)
    assert balance_of(user_id) == 10**9 - 1234 and open_holds() == []
    assert_books_balance()


def test_an_integrity_error_that_cannot_be_repaired_propagates_and_keeps_the_hold(account):
    user_id = account("1.00")
    settlement_id, held = take_hold(user_id, 5000)
    with pytest.raises(IntegrityError):  # the user it names does not exist: nothing to repair
        settle(settlement(123_456, settlement_id=settlement_id, hold=held, cost=1234))
    assert [hold.settlement_id for hold in open_holds(user_id)] == [settlement_id]
    assert records() == []
    assert_books_balance()


def test_a_settlement_id_is_settled_once_whatever_the_client_sent(account):
    """The same client request id twice, and 36-character UUIDs (too long for the old key), bill every request."""
    user_id = account("1.00")
    client_id = str(uuid.uuid4())
    for cost in (100, 200):
        settlement_id, held = take_hold(user_id, 1000)
        assert settle(settlement(user_id, settlement_id=settlement_id, hold=held, cost=cost,
                                 client_request_id=client_id)) is True
    assert [(r.client_request_id, r.cost_nano) for r in records(user_id)] == [(client_id, 100), (client_id, 200)]
    assert balance_of(user_id) == 10**9 - 300
    assert_books_balance()


def test_admin_adjustments_are_recorded_and_the_ledger_adds_up(client, make_user, auth_headers):
    admin = make_user(is_admin=True)
    registered = client.post("/auth/users/", json={"email": "ada@example.com", "password": "long enough"}).get_json()
    user_id = registered["id"]
    settlement_id, held = take_hold(user_id, 7000)
    settle(settlement(user_id, settlement_id=settlement_id, hold=held, cost=4321))
    headers = auth_headers(admin)
    assert client.patch(f"/admin/api/users/{user_id}", headers=headers,
                        json={"balance_delta": "2.5", "reason": "top-up"}).status_code == 200
    response = client.patch(f"/admin/api/users/{user_id}", headers=headers, json={"balance": 3, "reason": "reset"})
    assert response.get_json()["balance"] == 3.0
    adjustments = db.session.scalars(db.select(BalanceAdjustment).where(BalanceAdjustment.user_id == user_id)
                                     .order_by(BalanceAdjustment.id)).all()
    assert [(a.kind, a.admin_id) for a in adjustments] == [("signup", None), ("add", admin.id), ("set", admin.id)]
    assert adjustments[2].amount_nano == 3 * 10**9 - (10**9 - 4321 + 2_500_000_000)
    assert balances.ledger_balance(db.session, user_id) == balance_of(user_id) == 3 * 10**9
    detail = client.get(f"/admin/api/users/{user_id}", headers=headers).get_json()
    assert detail["ledger"] | {"consistent": True} == detail["ledger"]
    assert detail["ledger_balance_nano_usd"] == detail["balance_nano_usd"] == 3 * 10**9


@pytest.mark.parametrize("adjust, amount, rearmed", [
    (balances.add_to_balance, usd_to_nano("2"), True),
    (balances.set_balance, usd_to_nano("3"), True),
    (balances.add_to_balance, usd_to_nano("0.25"), False),  # still below the threshold: the alert stays spent
    (balances.set_balance, usd_to_nano("0.75"), False),
])
def test_an_admin_top_up_to_the_threshold_rearms_the_low_balance_alert(account, make_user, adjust, amount,
                                                                        rearmed):
    """The monitor re-arms only users it sees above the threshold: a top-up followed by a fall before its next
    round would raise no alert, so the top-up itself re-arms."""
    admin = make_user(email="root@example.com", is_admin=True)
    user_id = account("0.50", low_balance_threshold_nano=usd_to_nano("1"), low_balance_alerted_at=utcnow())
    adjust(db.session, user_id, admin.id, amount, "top-up")
    db.session.commit()
    db.session.expire_all()
    assert (db.session.get(User, user_id).low_balance_alerted_at is None) is rearmed
