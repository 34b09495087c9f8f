"""Durable holds: settlement retries, admin balance changes against holds in flight, `billing check`."""

import logging
import uuid

import pytest
from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from tests.billing.books import (
    assert_books_balance,
    balance_of,
    open_holds,
    records,
    settle,
    settlement,
    take_hold,
)
from tests.test_pages import csrf_token, log_in
from vault.billing import balances, ledger
from vault.billing.meter import Meter
from vault.errors import PaymentRequired
from vault.extensions import db
from vault.idempotency import new_token
from vault.models import BalanceAdjustment, User
from vault.runtime import runtime


def test_set_balance_means_x_minus_what_requests_in_flight_end_up_costing(account):
    admin_id = account(is_admin=True)
    user_id = account("1.00")
    settlement_id, held = take_hold(user_id, 7000)
    balances.set_balance(db.session, user_id, admin_id, 0, "stop")
    db.session.commit()
    assert balance_of(user_id) == -7000, "X minus the open hold"
    assert_books_balance()
    settle(settlement(user_id, settlement_id=settlement_id, hold=held, cost=3000))
    assert balance_of(user_id) == -3000, "X minus what the request in flight cost"
    assert_books_balance()
    with pytest.raises(PaymentRequired):
        take_hold(user_id, 1)


def test_add_to_balance_ignores_holds(account):
    admin_id = account(is_admin=True)
    user_id = account("1.00")
    take_hold(user_id, 7000)
    balances.add_to_balance(db.session, user_id, admin_id, 5000, "top-up")
    db.session.commit()
    assert balance_of(user_id) == 10**9 - 7000 + 5000
    assert_books_balance()


def test_admin_page_shows_the_ledger_check_and_what_set_means(app, account):
    account(email="root@example.com", is_admin=True)
    user_id = account("1.00")
    take_hold(user_id, 7000)
    browser = app.test_client()
    log_in(browser, "root@example.com")
    page = browser.get(f"/admin/users/{user_id}").get_data(as_text=True)
    assert "balance matches the ledger" in page and "1 in flight" in page
    assert "minus whatever their requests in flight end up costing" in page
    token = csrf_token(browser, f"/admin/users/{user_id}")
    browser.post(f"/admin/users/{user_id}/balance", data={"mode": "set", "amount": "2", "reason": "reset",
                                                          "csrf_token": token, "form_token": new_token()})
    assert balance_of(user_id) == 2 * 10**9 - 7000
    db.session.execute(update(User).where(User.id == user_id).values(balance_nano=User.balance_nano + 5))
    db.session.commit()
    assert "differs from the ledger by" in browser.get(f"/admin/users/{user_id}").get_data(as_text=True)


def test_admin_api_shows_the_ledger_check(client, account, auth_headers):
    admin = db.session.get(User, account(is_admin=True))
    user_id = account("1.00")
    take_hold(user_id, 7000)
    detail = client.get(f"/admin/api/users/{user_id}", headers=auth_headers(admin)).get_json()
    assert detail["ledger"] == {
        "stored_nano_usd": 10**9 - 7000, "expected_nano_usd": 10**9 - 7000, "difference_nano_usd": 0,
        "consistent": True, "adjustments_nano_usd": 10**9, "settled_cost_nano_usd": 0, "open_holds_nano_usd": 7000,
        "open_holds": 1}
    patched = client.patch(f"/admin/api/users/{user_id}", headers=auth_headers(admin),
                           json={"balance": "0.5", "reason": "reset"})
    assert patched.get_json()["balance_nano_usd"] == 500_000_000 - 7000
    assert_books_balance()


def test_billing_check_lists_mismatches_and_fails(runner, account):
    user_id = account("1.00")
    take_hold(user_id, 7000)
    clean = runner.invoke(args=["billing", "check"])
    assert clean.exit_code == 0, clean.output
    assert "0 mismatch(es); 1 open hold(s)" in clean.output
    db.session.execute(update(User).where(User.id == user_id).values(balance_nano=User.balance_nano - 42))
    db.session.commit()
    broken = runner.invoke(args=["billing", "check"])
    assert broken.exit_code == 1
    email = db.session.get(User, user_id).email
    assert f"user {user_id} {email}: stored" in broken.output and "(-42 nano-USD)" in broken.output


def test_signup_credit_and_admin_changes_count_in_the_check(client, account, auth_headers):
    admin = db.session.get(User, account(is_admin=True))
    user_id = client.post("/auth/users/", json={"email": "ada@example.com", "password": "long enough"}).get_json()["id"]
    client.patch(f"/admin/api/users/{user_id}", headers=auth_headers(admin), json={"balance_delta": 1, "reason": "x"})
    assert db.session.query(BalanceAdjustment).filter_by(user_id=user_id).count() == 2
    assert_books_balance()


@pytest.fixture
def no_wait(monkeypatch):
    monkeypatch.setattr(runtime().books.settlements, "_retry_delays", (0, 0, 0))


def failing_settle(monkeypatch, failures: int | None):
    """Make `ledger.settle_batch` (what the settlement writer calls) fail `failures` times (None:
    always) with a database error."""
    real, calls = ledger.settle_batch, []

    def flaky(session, entries):
        calls.append([entry.settlement_id for entry in entries])
        if failures is None or len(calls) <= failures:
            raise OperationalError("UPDATE users …", {}, Exception("server closed the connection"))
        return real(session, entries)

    monkeypatch.setattr(ledger, "settle_batch", flaky)
    return calls


def metered_request(user_id: int, amount: int) -> Meter:
    """A meter whose request holds `amount` (taken as the meter would, under its settlement id)."""
    vault = runtime()
    metered = Meter(vault.books, vault.prices, vault.hold_policy, user_id, None, "generateContent",
                    client_request_id="client-chosen-id")
    metered.hold = take_hold(user_id, amount, settlement_id=metered.settlement_id)[1]
    return metered


def test_a_failed_settlement_is_retried(account, monkeypatch, no_wait):
    user_id = account("1.00")
    metered = metered_request(user_id, 7000)
    calls = failing_settle(monkeypatch, failures=2)
    metered.finish(502, ending="failed", error="upstream")
    assert len(calls) == 3
    (record,) = records(user_id)
    assert (record.settlement_id, record.client_request_id) == (metered.settlement_id, "client-chosen-id")
    assert open_holds() == [] and balance_of(user_id) == 10**9
    assert_books_balance()


def test_a_settlement_that_keeps_failing_leaves_the_hold_and_a_log_line(account, monkeypatch, no_wait, caplog):
    user_id = account("1.00")
    metered = metered_request(user_id, 7000)
    failing_settle(monkeypatch, failures=None)
    with caplog.at_level(logging.WARNING, logger="vault.billing.settler"):
        metered.finish(200)
    assert records() == []
    assert [hold.settlement_id for hold in open_holds(user_id)] == [metered.settlement_id]
    assert any(metered.settlement_id in line and "FAILED" in line for line in caplog.messages)
    assert_books_balance()


def test_settlement_ids_are_made_by_the_server():
    vault_ids = {Meter(None, None, None, 1, 1, "generateContent", client_request_id="same").settlement_id
                 for _ in range(50)}
    assert len(vault_ids) == 50 and all(len(value) == 32 and uuid.UUID(value) for value in vault_ids)
