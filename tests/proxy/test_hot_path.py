"""The hot path's budget, counted instead of timed: database statements per proxied call,
settlements batched behind the answers, caches that forget at once, no session machinery,
and a relay that keeps nothing per chunk.

Statements are counted at the driver (SQLite's trace callback; psycopg's cursor), so the hold
sent on the raw connection counts as much as anything SQLAlchemy sends.
"""

import json
import tracemalloc
from decimal import Decimal
from types import SimpleNamespace

import psycopg
import pytest
from sqlalchemy import event

from tests.billing.books import assert_books_balance, balance_of, open_holds, records
from vault.accounts import revoke_api_key, set_key_rate_limit, set_user_active
from vault.billing.prices import PriceInput, upsert_price
from vault.billing.usage import SseUsageTap
from vault.extensions import db
from vault.models import User
from vault.proxy.forwarding import Delivery
from vault.runtime import runtime
from vault.upstream.failover import Answer
from vault.upstream.relay import relay_stream

GENERATE = "/v1beta/models/gemini-2.5-flash:generateContent"
COUNT = "/v1beta/models/gemini-2.5-flash:countTokens"
PROMPT = {"contents": [{"role": "user", "parts": [{"text": "Say hi"}]}]}


class Statements:
    """Every statement the driver sends while counting, SQL text only."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.on = False

    def note(self, sql) -> None:
        text = " ".join(str(sql).split())
        if self.on and text.strip("; "):
            self.sent.append(text)

    def during(self, action) -> list[str]:
        self.sent, self.on = [], True
        try:
            action()
        finally:
            self.on = False
        return self.sent

    def work(self) -> list[str]:
        """The statements that are not transaction control."""
        return [sql for sql in self.sent if sql.split()[0].upper() not in ("BEGIN", "COMMIT", "ROLLBACK")]


@pytest.fixture
def statements(app, monkeypatch):
    counter = Statements()
    engine = db.engine
    if engine.dialect.name == "sqlite":
        def trace(dbapi_connection, _record) -> None:
            dbapi_connection.set_trace_callback(counter.note)

        event.listen(engine, "connect", trace)
        engine.dispose()  # every connection from here on is traced
        yield counter
        event.remove(engine, "connect", trace)
        return
    for name in ("execute", "executemany"):
        real = getattr(psycopg.Cursor, name)

        def counted(cursor, query, *args, _real=real, **kwargs):
            counter.note(query if isinstance(query, str) else query.as_string(cursor))
            return _real(cursor, query, *args, **kwargs)

        monkeypatch.setattr(psycopg.Cursor, name, counted)
    real_commit = psycopg.Connection.commit

    def commit(connection):
        counter.note("COMMIT")
        return real_commit(connection)

    monkeypatch.setattr(psycopg.Connection, "commit", commit)
    yield counter


@pytest.fixture
def caller(proxied_key):
    """A user with $100 of recorded credit and a Vault key, in front of the fake upstream, settlements
    queued (the writer's thread never fires on its own here: the tests flush it)."""
    writer = runtime().books.settlements
    writer.delay = 3600.0
    key = proxied_key("100.00")
    yield SimpleNamespace(user_id=key.record.user_id, key=key.plaintext, key_id=key.record.id, writer=writer)
    writer.close()


def call(client, vault_key: str, path: str = GENERATE, status: int = 200):
    response = client.post(path, json=PROMPT, headers={"x-goog-api-key": vault_key})
    response.close()  # runs the close callback: the settlement is queued
    assert response.status_code == status, response.get_data(as_text=True)
    return response


def test_a_warm_billable_call_sends_one_statement_and_queues_its_settlement(client, caller, statements):
    call(client, caller.key)  # warms the key cache, the price book and the pool
    caller.writer.flush()
    sent = statements.during(lambda: call(client, caller.key))
    work = statements.work()
    if db.engine.dialect.name == "postgresql":
        assert len(sent) == 1 and sent[0].startswith("WITH taken AS ( UPDATE users"), sent
    else:  # no round trips on SQLite: the conditional UPDATE and the row, in one transaction
        assert [sql.split()[0] for sql in work] == ["UPDATE", "INSERT"] and "pending_holds" in work[1], sent
        assert sent[-1] == "COMMIT"
    assert caller.writer.pending() == 1 and len(open_holds(caller.user_id)) == 1


def test_a_warm_free_call_sends_one_statement(client, caller, statements):
    call(client, caller.key, COUNT)
    caller.writer.flush()
    sent = statements.during(lambda: call(client, caller.key, COUNT))
    assert len(sent) == 1 and sent[0].startswith("SELECT balance_nano"), [s[:60] for s in sent]


def test_settlements_are_written_many_per_transaction(client, caller, statements):
    call(client, caller.key)
    caller.writer.flush()
    for _ in range(12):
        call(client, caller.key)
    assert caller.writer.pending() == 12 and records(caller.user_id).__len__() == 1
    statements.during(caller.writer.flush)
    # One DELETE of the holds, one INSERT of the records (many rows), one UPDATE per table: the
    # same handful of statements for 12 calls as for 1 (SQLite's trace shows each row of an
    # executemany, so statements are told apart by their shape there).
    shapes = {" ".join(sql.split()[:3]) for sql in statements.work()}
    assert len(shapes) <= 5, shapes
    if db.engine.dialect.name == "postgresql":
        assert len(statements.work()) <= 5, statements.sent
    assert [sql for sql in statements.sent if sql == "COMMIT"] == ["COMMIT"]
    assert len(records(caller.user_id)) == 13 and open_holds(caller.user_id) == []
    assert_books_balance(caller.user_id)


def test_a_revoked_key_stops_at_the_next_call_and_its_hold_is_given_back(client, caller, fake_gemini):
    call(client, caller.key)
    caller.writer.flush()
    before, calls = balance_of(caller.user_id), len(fake_gemini.calls)
    user = db.session.get(User, caller.user_id)
    revoke_api_key(db.session, user, caller.key_id)
    db.session.commit()
    call(client, caller.key, status=401)
    assert len(fake_gemini.calls) == calls  # nothing forwarded with the revoked key
    assert balance_of(caller.user_id) == before and open_holds(caller.user_id) == []
    caller.writer.flush()
    assert_books_balance(caller.user_id)


def test_a_deactivated_user_stops_at_the_next_call(client, caller):
    call(client, caller.key)
    set_user_active(db.session, db.session.get(User, caller.user_id), False)
    db.session.commit()
    call(client, caller.key, status=403)


def test_a_new_rate_limit_applies_at_the_next_call(client, caller):
    call(client, caller.key)
    set_key_rate_limit(db.session, None, caller.key_id, 1)
    db.session.commit()
    statuses = [client.post(GENERATE, json=PROMPT, headers={"x-goog-api-key": caller.key}).status_code
                for _ in range(2)]
    assert statuses[-1] == 429


def test_a_price_edit_prices_the_next_call(client, caller):
    call(client, caller.key)
    upsert_price(db.session, "gemini-2.5-flash", PriceInput(input=Decimal("0.77"), output=Decimal("0.88")))
    db.session.commit()
    call(client, caller.key)
    caller.writer.flush()
    latest = records(caller.user_id)[-1]
    assert (latest.price_input_nano, latest.price_output_nano) == (770_000_000, 880_000_000)
    assert_books_balance(caller.user_id)


def test_proxy_routes_never_touch_the_cookie_session(client, caller, app, monkeypatch):
    signers = []
    interface = app.session_interface
    real = interface.get_signing_serializer
    monkeypatch.setattr(interface, "get_signing_serializer", lambda flask_app: signers.append(1) or real(flask_app))
    client.set_cookie("session", "anything")
    response = call(client, caller.key)
    assert signers == [] and "Set-Cookie" not in response.headers
    client.get("/auth/login")
    assert signers  # the web area still has its session


class Upstream:
    """A streamed upstream answer of `count` Gemini SSE events, read as the relay reads it."""

    def __init__(self, count: int):
        event = {"candidates": [{"content": {"parts": [{"text": "a few words of the answer "}], "role": "model"}}],
                 "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 6, "totalTokenCount": 11}}
        self.piece = b"data: " + json.dumps(event).encode() + b"\r\n\r\n"
        self.left = count
        self.raw = self

    def read1(self, _size: int) -> bytes:
        if not self.left:
            return b""
        self.left -= 1
        return self.piece

    def close(self) -> None:
        self.left = 0


def test_relaying_a_chunk_keeps_nothing(caller):
    """Memory of a relayed stream does not grow with its length: every chunk's objects are gone
    before the next (the 5,000-stream budget depends on it)."""
    def relay(count: int) -> int:
        meter = SimpleNamespace(first_byte=lambda: None, passes_hold=lambda evidence: False)
        upstream = Upstream(count)
        answer = Answer(key=None, status=200, headers={}, response=upstream, first_chunk=upstream.piece)
        delivery = Delivery(meter, SseUsageTap())
        stream = relay_stream(answer, lambda ending: None, delivery.finished, observe=delivery.observe)
        tracemalloc.start()
        try:
            for _ in stream:
                pass
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    relay(10)  # warm caches of the json module and the regular expressions
    # tracemalloc counts every thread of the process (a shared stack's log pump, another test's
    # background writer): the least of three runs is this relay's own peak.
    short, long = min(relay(100) for _ in range(3)), min(relay(5000) for _ in range(3))
    assert long <= short + 1024, (short, long)  # the peak does not grow with the number of chunks
    assert short < 16 * 1024
