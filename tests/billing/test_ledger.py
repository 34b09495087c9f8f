"""Prices, holds, settlement and the ledger, on SQLite and PostgreSQL."""

import json
import threading
import uuid
from datetime import UTC, datetime

import pytest

from vault import models
from vault.billing import estimate, ledger
from vault.billing.ledger import Settlement
from vault.billing.money import usd_to_nano
from vault.billing.prices import Price, Rates, cost_nano, model_candidates
from vault.billing.usage import Usage
from vault.errors import PaymentRequired
from vault.extensions import db
from vault.models import BalanceAdjustment, UsageRecord, User
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


def test_hold_estimate_uses_the_output_cap():
    price = Price("m", Rates(usd_to_nano("1"), usd_to_nano("10"), 0))
    body = b'{"generationConfig": {"maxOutputTokens": 1000}, "contents": []}'
    hold = estimate.estimate_hold(len(body), json.loads(body), price, 8192, 1)
    assert hold == cost_nano(Usage(prompt=len(body) // 4 + 1, candidates=1000), price.base)
    assert estimate.estimate_hold(17, {"max_tokens": 5}, price, 8192, 10**9) == 10**9


def fresh_user(make_user, balance="1.00") -> int:
    return make_user(balance=balance).id


def balance_of(user_id: int) -> int:
    db.session.expire_all()
    return db.session.get(User, user_id).balance_nano


def test_reserve_takes_the_hold_or_what_is_left(make_user):
    user_id = fresh_user(make_user, "0.000005")
    session = runtime().session_factory()
    assert ledger.reserve(session, user_id, 2000) == 2000
    assert balance_of(user_id) == 3000
    assert ledger.reserve(session, user_id, 10_000) == 3000
    assert balance_of(user_id) == 0
    with pytest.raises(PaymentRequired):
        ledger.reserve(session, user_id, 1)
    with pytest.raises(PaymentRequired):
        ledger.reserve(session, user_id, 0)
    session.close()


def test_concurrent_reserves_never_overspend(make_user, database_url):
    user_id = fresh_user(make_user, "0.000100")  # 100,000 nano-USD
    taken, refused, lock = [], [], threading.Lock()
    sessions = runtime().session_factory

    def worker():
        session = sessions()
        for _ in range(10):
            try:
                amount = ledger.reserve(session, user_id, 1500)
                with lock:
                    taken.append(amount)
            except PaymentRequired:
                with lock:
                    refused.append(1)
        session.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(taken) == 100_000 and balance_of(user_id) == 0
    assert len(taken) + len(refused) == 80


def settlement(user_id, **fields) -> Settlement:
    now = datetime.now(UTC)
    defaults = {"request_id": uuid.uuid4().hex, "user_id": user_id, "api_key_id": None, "endpoint": "generateContent",
                "model": "gemini-2.5-flash", "status": 200, "started_at": now, "finished_at": now, "total_ms": 5}
    return Settlement(**(defaults | fields))


def test_settle_moves_balance_and_counters_once(make_user, make_api_key):
    user = make_user(balance="1.00")
    key = make_api_key(user).record
    entry = settlement(user.id, api_key_id=key.id, hold=5000, cost=1234,
                       usage=Usage(prompt=10, cached=2, tool_prompt=1, candidates=3, thoughts=4, total=18))
    session = runtime().session_factory()
    assert ledger.settle(session, entry) is True
    assert ledger.settle(session, entry) is False  # idempotent by request id
    session.close()
    db.session.expire_all()
    user, key = db.session.get(User, user.id), db.session.get(type(key), key.id)
    assert user.balance_nano == 10**9 + 5000 - 1234
    assert (user.request_count, user.total_tokens, user.spend_nano) == (1, 18, 1234)
    assert (key.request_count, key.prompt_tokens, key.output_tokens, key.total_tokens, key.spend_nano) == (
        1, 11, 7, 18, 1234)
    assert db.session.query(UsageRecord).count() == 1


def test_admin_adjustments_are_recorded_and_the_ledger_adds_up(client, make_user, auth_headers):
    admin = make_user(is_admin=True)
    registered = client.post("/auth/users/", json={"email": "ada@example.com", "password": "long enough"}).get_json()
    user_id = registered["id"]
    session = runtime().session_factory()
    ledger.reserve(session, user_id, 7000)
    ledger.settle(session, settlement(user_id, hold=7000, cost=4321))
    session.close()
    headers = auth_headers(admin)
    assert client.patch(f"/admin/api/users/{user_id}", headers=headers,
                        json={"balance_delta": "2.5", "reason": "top-up"}).status_code == 200
    response = client.patch(f"/admin/api/users/{user_id}", headers=headers, json={"balance": 3, "reason": "reset"})
    assert response.get_json()["balance"] == 3.0
    adjustments = db.session.scalars(db.select(BalanceAdjustment).where(BalanceAdjustment.user_id == user_id)
                                     .order_by(BalanceAdjustment.id)).all()
    assert [(a.kind, a.admin_id) for a in adjustments] == [("signup", None), ("add", admin.id), ("set", admin.id)]
    assert adjustments[2].amount_nano == 3 * 10**9 - (10**9 - 4321 + 2_500_000_000)
    assert ledger.ledger_balance(db.session, user_id) == balance_of(user_id) == 3 * 10**9
