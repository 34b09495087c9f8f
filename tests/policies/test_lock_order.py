"""the capped hold and the settlement lock the same two rows in opposite orders.

`quota.take` (a key with a spend cap, tokens per minute or concurrency limit) first locks the
key's row (`LOCK_KEY`, an UPDATE of `api_keys`), then takes the balance (UPDATE `users`).
A settlement of the same key (`ledger.write_totals`, in `settle` and in the writer's
`settle_batch`) updates `users` first, then `api_keys`. On PostgreSQL a hold taken while one
of the key's calls settles can therefore deadlock with it: PostgreSQL aborts one of the two
after `deadlock_timeout` (1 s), and either the caller gets a 503 ("the database is
unavailable") or the settlement is rolled back and retried. Two real transactions here are
only paced (hooks wait at most a few seconds at the points where the orders cross), so the
test passes, just slower, once both take the rows in one order.
"""

import threading
from datetime import timedelta

import pytest
from sqlalchemy import event

from tests.billing.books import assert_books_balance, settlement
from tests.policies.test_enforcement import set_policy
from vault.billing import ledger
from vault.billing.holds import HoldRequest
from vault.clock import utcnow
from vault.extensions import db
from vault.ids import time_ordered_id
from vault.policies.quota import Quota
from vault.runtime import runtime

PACE = 3.0  # seconds a hook waits for the other transaction at most


def hold_request(user_id: int, api_key_id: int) -> HoldRequest:
    now = utcnow()
    return HoldRequest(user_id, time_ordered_id(), 1_000_000, None, endpoint="generateContent",
                       model="gemini-2.5-flash", created_at=now, expires_at=now + timedelta(hours=1),
                       estimate_nano=1000, api_key_id=api_key_id, quota=Quota(api_key_id, max_concurrency=10))


def flattened(statement: str) -> str:
    return " ".join(statement.split()).lower()


# Row locks are PostgreSQL's: SQLite takes one write lock for the whole database.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_capped_hold_and_a_settlement_of_the_same_key_do_not_deadlock(app, key):
    set_policy(key, max_concurrency=10)
    user_id, key_id = key.record.user_id, key.record.id
    holds, engine = runtime().books.holds, db.engine
    first = hold_request(user_id, key_id)
    assert holds.take(first).amount == 1_000_000  # a call of the key in flight, about to settle

    settler_has_user_row, holder_has_key_row = threading.Event(), threading.Event()

    def before(conn, cursor, statement, parameters, context, executemany):
        text, thread = flattened(statement), threading.current_thread().name
        if thread == "settler" and text.startswith("update api_keys"):
            holder_has_key_row.wait(PACE)
        if thread == "holder" and text.startswith("update api_keys set id="):
            settler_has_user_row.wait(PACE)

    def after(conn, cursor, statement, parameters, context, executemany):
        text, thread = flattened(statement), threading.current_thread().name
        if thread == "settler" and text.startswith("update users"):
            settler_has_user_row.set()
        if thread == "holder" and text.startswith("update api_keys set id="):
            holder_has_key_row.set()

    errors: dict[str, BaseException] = {}

    def settle_first() -> None:
        try:
            with engine.connect() as connection:  # as the settlement writer does
                ledger.settle_batch(connection, [settlement(user_id, settlement_id=first.settlement_id,
                                                            api_key_id=key_id, cost=400_000)])
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors["settler"] = exc

    def take_second() -> None:
        try:
            holds.take(hold_request(user_id, key_id))
        except BaseException as exc:  # noqa: BLE001
            errors["holder"] = exc

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        threads = [threading.Thread(target=settle_first, name="settler"),
                   threading.Thread(target=take_second, name="holder")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    assert not errors, {name: f"{type(exc).__name__}: {str(exc).splitlines()[0]}" for name, exc in errors.items()}
    assert_books_balance(user_id)
