"""The sweeper settles abandoned holds once, however many workers sweep and settle at once."""

import threading
import time
from datetime import UTC, datetime

from tests.billing.books import (
    assert_books_balance,
    balance_of,
    open_holds,
    records,
    settle,
    settlement,
    take_hold,
)
from vault.billing import abandoned, ledger
from vault.billing.sweeper import Sweeper
from vault.bootstrap import bootstrap
from vault.runtime import runtime


def sweep() -> int:
    with runtime().session_factory() as session:
        return abandoned.sweep_abandoned(session, datetime.now(UTC))


def test_only_expired_holds_are_settled_as_abandoned_at_their_estimate(account):
    user_id = account("1.00")
    expired, _ = take_hold(user_id, 7000, estimate=3000, expires_in=-1, client_request_id="trace-me")
    fresh, _ = take_hold(user_id, 5000, estimate=1000)
    assert sweep() == 1
    (record,) = records(user_id)
    assert (record.settlement_id, record.client_request_id, record.ending, record.usage_source, record.status) == (
        expired, "trace-me", "abandoned", "estimated", 0)
    assert (record.hold_nano, record.cost_nano, record.model, record.endpoint) == (
        7000, 3000, "gemini-2.5-flash", "generateContent")
    assert [hold.settlement_id for hold in open_holds()] == [fresh]
    assert balance_of(user_id) == 10**9 - 3000 - 5000
    assert sweep() == 0
    assert_books_balance()


def test_the_charge_never_exceeds_the_hold(account):
    user_id = account("1.00")
    take_hold(user_id, 7000, estimate=99_999, expires_in=-1)
    assert sweep() == 1
    assert records(user_id)[0].cost_nano == 7000 and balance_of(user_id) == 10**9 - 7000
    assert_books_balance()


def test_a_request_finishing_after_its_hold_was_swept_changes_nothing(account):
    user_id = account("1.00")
    settlement_id, held = take_hold(user_id, 7000, estimate=3000, expires_in=-1)
    assert sweep() == 1
    assert settle(settlement(user_id, settlement_id=settlement_id, hold=held, cost=6000)) is False
    assert len(records()) == 1 and balance_of(user_id) == 10**9 - 3000
    assert_books_balance()


def test_many_sweepers_and_settlements_at_once_settle_each_hold_once(account):
    users = [account("1.00") for _ in range(4)]
    holds = [(user_id, *take_hold(user_id, 1000 + n, estimate=500, expires_in=-1))
             for n in range(40) for user_id in users[n % 4:n % 4 + 1]]
    sessions, errors = runtime().session_factory, []

    def sweep_all() -> None:
        try:
            with sessions() as session:
                abandoned.sweep_abandoned(session, datetime.now(UTC), batch=7)
        except Exception as exc:  # any failure fails the test below
            errors.append(exc)

    def settle_some() -> None:
        for user_id, settlement_id, held in holds[::3]:
            with sessions() as session:
                ledger.settle(session, settlement(user_id, settlement_id=settlement_id, hold=held, cost=100))

    threads = [threading.Thread(target=sweep_all) for _ in range(6)] + [threading.Thread(target=settle_some)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert open_holds() == []
    assert sorted(record.settlement_id for record in records()) == sorted(hold[1] for hold in holds)
    assert_books_balance()


def test_a_worker_sweeps_in_the_background_at_most_every_interval(account):
    user_id = account("1.00")
    take_hold(user_id, 7000, expires_in=-1)
    now = [100.0]
    sweeper = Sweeper(runtime().session_factory, interval=60, clock=lambda: now[0])
    sweeper.tick()
    time.sleep(0.2)
    assert len(open_holds()) == 1, "not due yet"
    now[0] += 61
    sweeper.tick()
    for _ in range(100):
        if not open_holds():
            break
        time.sleep(0.05)
    assert open_holds() == [] and records(user_id)[0].ending == "abandoned"
    assert_books_balance()


def test_billing_sweep_and_the_start_up_sweep(app, runner, account):
    user_id = account("1.00")
    take_hold(user_id, 7000, expires_in=-1)
    result = runner.invoke(args=["billing", "sweep"])
    assert result.exit_code == 0 and "Settled 1 abandoned hold(s)." in result.output
    take_hold(user_id, 5000, expires_in=-1)
    bootstrap(app)
    assert open_holds() == [] and len(records(user_id)) == 2
    assert_books_balance()
