"""The settlement writer: many calls per transaction, and never a settlement lost silently.

Each test takes real holds, queues their settlements and checks the ledger invariant and
one record per settlement id afterwards, on SQLite and PostgreSQL.
"""

import logging
import threading
from dataclasses import replace

import pytest
from sqlalchemy.exc import OperationalError

from tests.billing.books import assert_books_balance, balance_of, open_holds, records, settle, settlement, take_hold
from vault.billing import ledger
from vault.billing.settler import SettlementWriter
from vault.billing.sweeper import Sweeper
from vault.extensions import db
from vault.models import ApiKey, User
from vault.runtime import runtime


@pytest.fixture
def writer(app):
    """A writer whose thread never fires on its own here: the tests flush it."""
    built = SettlementWriter(db.engine, runtime().session_factory, delay=3600, retry_delays=(0, 0, 0))
    yield built
    built.close()


def finished(user_id: int, hold: int, cost: int, **fields):
    """A hold of `hold` taken now and the settlement of its request costing `cost`."""
    settlement_id, held = take_hold(user_id, hold, api_key_id=fields.pop("api_key_id", None))
    return settlement(user_id, settlement_id=settlement_id, hold=held, cost=cost, **fields)


def test_a_batch_settles_every_call_in_one_go(account, writer):
    user_id = account("1.00")
    entries = [finished(user_id, 5000, 1000 + n) for n in range(20)]
    for entry in entries:
        writer.submit(entry)
    assert writer.pending() == 20 and len(open_holds(user_id)) == 20
    assert writer.flush()
    assert writer.pending() == 0 and open_holds(user_id) == []
    assert sorted(record.settlement_id for record in records(user_id)) == sorted(e.settlement_id for e in entries)
    assert balance_of(user_id) == 10**9 - sum(1000 + n for n in range(20))
    assert_books_balance(user_id)


def test_the_background_writer_writes_without_being_asked(account, app, monkeypatch):
    user_id = account("1.00")
    written = threading.Event()
    real = ledger.settle_batch

    def noting(session, entries):
        real(session, entries)
        written.set()

    built = SettlementWriter(db.engine, runtime().session_factory, delay=0.001)
    monkeypatch.setattr(ledger, "settle_batch", noting)
    try:
        built.submit(finished(user_id, 5000, 700))
        assert written.wait(timeout=10)
    finally:
        built.close()
    assert len(records(user_id)) == 1 and open_holds(user_id) == []
    assert_books_balance(user_id)


def test_one_call_already_swept_does_not_cost_the_others_their_records(account, writer, caplog):
    user_id = account("1.00")
    entries = [finished(user_id, 5000, 1000) for _ in range(5)]
    late = entries[2]
    assert settle(replace(late, cost=4000, ending="abandoned"))  # the sweeper got there first
    for entry in entries:
        writer.submit(entry)
    with caplog.at_level(logging.WARNING, logger="vault.billing.settler"):
        assert writer.flush()
    assert any(late.settlement_id in line and "already settled" in line for line in caplog.messages)
    assert len(records(user_id)) == 5 and open_holds(user_id) == []
    assert_books_balance(user_id)


def test_a_call_whose_vault_key_was_deleted_meanwhile_is_recorded_without_it(account, writer, make_api_key):
    user_id = account("1.00")
    key = make_api_key(db.session.get(User, user_id)).record
    entry = finished(user_id, 5000, 1000, api_key_id=key.id)
    db.session.delete(db.session.get(ApiKey, key.id))
    db.session.commit()
    writer.submit(entry)
    assert writer.flush()
    (record,) = records(user_id)
    assert record.settlement_id == entry.settlement_id and record.api_key_id is None
    assert_books_balance(user_id)


def test_a_database_that_stays_away_keeps_the_calls_queued_and_their_holds_pending(account, writer, monkeypatch,
                                                                                  caplog):
    user_id = account("1.00")
    entries = [finished(user_id, 5000, 1000) for _ in range(3)]
    real = ledger.settle_batch

    def down(session, batch):
        raise OperationalError("DELETE FROM pending_holds …", {}, Exception("server closed the connection"))

    monkeypatch.setattr(ledger, "settle_batch", down)
    for entry in entries:
        writer.submit(entry)
    with caplog.at_level(logging.WARNING, logger="vault.billing.settler"):
        assert not writer.flush()
    assert writer.pending() == 3 and len(open_holds(user_id)) == 3 and records(user_id) == []
    assert any("3 settlements not written" in line for line in caplog.messages)
    assert_books_balance(user_id)  # the holds keep the books exact meanwhile

    monkeypatch.setattr(ledger, "settle_batch", real)
    assert writer.flush()
    assert len(records(user_id)) == 3 and open_holds(user_id) == []
    assert_books_balance(user_id)


def test_a_process_that_dies_with_calls_queued_leaves_holds_the_sweeper_settles(account, writer):
    """kill -9 loses the queue, never the money: the holds are swept as abandoned at their estimate."""
    user_id = account("1.00")
    settlement_id, _ = take_hold(user_id, 5000, estimate=1200, expires_in=-1)
    writer.submit(settlement(user_id, settlement_id=settlement_id, hold=5000, cost=900))
    writer._queue.clear()  # the process is gone with its queue
    assert Sweeper(runtime().session_factory, 0).sweep() == 1
    (record,) = records(user_id)
    assert (record.ending, record.cost_nano, record.usage_source) == ("abandoned", 1200, "estimated")
    assert_books_balance(user_id)


def test_close_writes_what_is_queued(account, writer):
    user_id = account("1.00")
    writer.submit(finished(user_id, 5000, 300))
    writer.close()
    assert len(records(user_id)) == 1 and open_holds(user_id) == []
    writer.submit(finished(user_id, 5000, 300))  # after close, written at once
    assert len(records(user_id)) == 2


def test_a_hold_whose_reply_was_lost_is_still_given_back(account):
    """The hold committed, but its caller saw an error and believes it holds nothing: settling
    refunds what the hold row says."""
    user_id = account("1.00")
    settlement_id, held = take_hold(user_id, 7000)
    assert settle(settlement(user_id, settlement_id=settlement_id, hold=0, cost=0, status=503, ending="failed"))
    assert balance_of(user_id) == 10**9 and open_holds(user_id) == []
    (record,) = records(user_id)
    assert record.hold_nano == held
    assert_books_balance(user_id)


def test_a_call_whose_user_was_deleted_is_dropped_and_blocks_nobody(account, writer, caplog):
    gone, kept = account("1.00"), account("1.00")
    doomed = finished(gone, 5000, 1000)
    after = finished(kept, 5000, 1000)
    db.session.delete(db.session.get(User, gone))  # its holds go with it (ON DELETE CASCADE)
    db.session.commit()
    writer.submit(doomed)
    writer.submit(after)
    with caplog.at_level(logging.ERROR, logger="vault.billing.settler"):
        assert writer.flush()
    assert any(doomed.settlement_id in line and "cannot be written" in line for line in caplog.messages)
    assert writer.pending() == 0 and [record.settlement_id for record in records()] == [after.settlement_id]
    assert_books_balance()
