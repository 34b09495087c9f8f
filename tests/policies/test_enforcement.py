"""Each key policy at the proxy's door (Flask test client, SQLite and PostgreSQL): the refusal,
its status and dialect, the policy it names, no upstream call, and the books still exact."""

from datetime import timedelta

import pytest
from flask import current_app
from sqlalchemy import select

from tests.billing.books import assert_books_balance, balance_of, records
from tests.fake_gemini import Reply
from vault.clock import utcnow
from vault.extensions import db
from vault.models import ApiKey, KeySpend, PendingHold, User
from vault.policies.rules import period_of

GENERATE = "/v1beta/models/gemini-2.5-flash:generateContent"
STREAM = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
COUNT = "/v1beta/models/gemini-2.5-flash:countTokens"
CHAT = "/v1/chat/completions"
PROMPT = {"contents": [{"role": "user", "parts": [{"text": "Say hi"}]}]}


def set_policy(key, **columns) -> None:
    record = db.session.get(ApiKey, key.record.id)
    for name, value in columns.items():
        setattr(record, name, value)
    db.session.commit()


def set_limits(key, **limits) -> None:
    user = db.session.get(User, key.record.user_id)
    user.limits = limits
    db.session.commit()


def closed(response):
    """The response read and closed: a call is settled when its response closes."""
    response.get_data()
    response.close()
    return response


def native(client, key, path=GENERATE, model_body=PROMPT, **environ):
    return closed(client.post(path, json=model_body, headers={"x-goog-api-key": key.plaintext},
                              environ_base=environ))


def chat(client, key, model="gemini-2.5-flash", **environ):
    return closed(client.post(CHAT, json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
                              headers={"Authorization": f"Bearer {key.plaintext}"}, environ_base=environ))


def assert_refused(response, status: int, policy: str, dialect: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.headers["X-Vault-Policy"] == policy
    error = response.get_json()["error"]
    assert error["message"].startswith(f"{policy}: ")
    if dialect == "google":
        assert error["code"] == status
    else:
        assert error["type"] in {"permission_error", "rate_limit_error", "insufficient_quota", "payment_required",
                                 "invalid_request_error"} and "code" in error


def assert_nothing_spent(key, fake) -> None:
    assert fake.calls == []
    assert balance_of(key.record.user_id) == 10**9
    assert_books_balance(key.record.user_id)


@pytest.mark.parametrize("dialect", ["google", "openai"])
def test_an_expired_key_is_refused_with_403(client, key, fake_gemini, dialect):
    set_policy(key, expires_at=utcnow() - timedelta(seconds=1))
    response = native(client, key) if dialect == "google" else chat(client, key)
    assert_refused(response, 403, "expires_at", dialect)
    assert_nothing_spent(key, fake_gemini)


def test_a_key_expiring_later_still_works(client, key):
    set_policy(key, expires_at=utcnow() + timedelta(hours=1))
    assert native(client, key).status_code == 200


@pytest.mark.parametrize(("address", "forwarded", "allowed"), [
    ("10.1.2.3", None, True), ("192.0.2.7", None, False), ("192.0.2.7", "10.1.2.3", False),
    ("::ffff:10.9.9.9", None, True), ("2001:db8::5", None, False)])
@pytest.mark.parametrize("dialect", ["google", "openai"])
def test_the_ip_allow_list_uses_the_real_client_address(client, key, fake_gemini, address, forwarded, allowed,
                                                        dialect):
    set_policy(key, allowed_ips=["10.0.0.0/8"])
    environ = {"REMOTE_ADDR": address} | ({"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {})
    response = native(client, key, **environ) if dialect == "google" else chat(client, key, **environ)
    if allowed:
        assert response.status_code == 200
    else:  # a forwarded address from a peer that is not a trusted proxy is ignored
        assert_refused(response, 403, "allowed_ips", dialect)
        assert_nothing_spent(key, fake_gemini)


@pytest.mark.parametrize(("path", "body"), [
    ("/v1beta/models/gemini-2.5-pro:generateContent", PROMPT),
    ("/v1/models/gemini-2.5-pro:streamGenerateContent?alt=sse", PROMPT),
    ("/v1beta/models/gemini-2.5-pro:countTokens", PROMPT),
    ("/v1beta/models/gemini-2.5-pro", None),
    ("/v1beta/cachedContents", {"model": "models/gemini-2.5-pro", "contents": PROMPT["contents"]}),
])
def test_a_model_outside_the_keys_globs_is_refused_natively(client, key, fake_gemini, path, body):
    set_policy(key, allowed_models=["gemini-2.5-flash*"])
    headers = {"x-goog-api-key": key.plaintext}
    response = closed(client.post(path, json=body, headers=headers) if body else client.get(path, headers=headers))
    assert_refused(response, 403, "allowed_models", "google")
    assert_nothing_spent(key, fake_gemini)


@pytest.mark.parametrize("model", ["gemini-2.5-pro", "models/gemini-2.5-pro", "gemini-2.5-flas", "GEMINI-2.5-FLASH"])
def test_a_model_outside_the_keys_globs_is_refused_in_openai_dialect(client, key, fake_gemini, model):
    set_policy(key, allowed_models=["gemini-2.5-flash*"])
    assert_refused(chat(client, key, model), 403, "allowed_models", "openai")
    assert_nothing_spent(key, fake_gemini)


def test_models_inside_the_globs_pass(client, key):
    set_policy(key, allowed_models=["gemini-2.5-flash*"])
    assert native(client, key).status_code == 200
    assert chat(client, key, "gemini-2.5-flash-lite").status_code == 200


def test_the_owners_visible_models_bind_every_key(client, key, fake_gemini):
    set_limits(key, visible_models=["gemini-2.5-flash-lite"])
    assert_refused(native(client, key), 403, "visible_models", "google")
    assert_refused(chat(client, key), 403, "visible_models", "openai")
    assert_nothing_spent(key, fake_gemini)
    assert chat(client, key, "gemini-2.5-flash-lite").status_code == 200


def test_requests_per_minute_answer_429_with_retry_after(client, key):
    set_policy(key, rate_limit_rpm=2)
    assert [native(client, key).status_code for _ in range(2)] == [200, 200]
    refused = chat(client, key)
    assert_refused(refused, 429, "rate_limit_rpm", "openai")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60


def test_the_owners_rpm_ceiling_is_the_keys_default(client, key):
    set_limits(key, rate_limit_rpm=1)
    assert native(client, key).status_code == 200
    assert_refused(native(client, key), 429, "rate_limit_rpm", "google")


def test_concurrency_counts_calls_in_flight(client, key, fake_gemini):
    set_policy(key, max_concurrency=1)
    gate = fake_gemini.gated(Reply(text="one two three four", chunks=2))
    first = client.post(STREAM, json=PROMPT, headers={"x-goog-api-key": key.plaintext}, buffered=False)
    assert first.status_code == 200
    second = native(client, key)
    assert_refused(second, 429, "max_concurrency", "google")
    assert second.headers["Retry-After"] == "1"
    assert len(fake_gemini.calls) == 1
    gate.open()
    first.get_data()
    first.close()
    assert native(client, key).status_code == 200
    assert db.session.scalar(select(PendingHold.id)) is None
    assert_books_balance(key.record.user_id)


def test_free_calls_count_in_flight_too(client, key):
    set_policy(key, max_concurrency=1)
    response = native(client, key, COUNT)
    assert response.status_code == 200
    assert len(records()) == 1 and db.session.scalar(select(PendingHold.id)) is None


def test_tokens_per_minute_count_settled_usage(client, key, fake_gemini):
    set_policy(key, rate_limit_tpm=10)
    fake_gemini.enqueue(Reply(text=" ".join(["word"] * 20)))
    assert native(client, key).status_code == 200
    refused = native(client, key)
    assert_refused(refused, 429, "rate_limit_tpm", "google")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert len(fake_gemini.calls) == 1


def this_period(period: str | None) -> str:
    return period_of(period, utcnow(), current_app.config["VAULT_SPEND_CAP_TIMEZONE"])


@pytest.mark.parametrize("period", ["day", "week", "month", None])
def test_settled_costs_add_up_in_the_keys_period(client, key, period):
    set_policy(key, spend_cap_nano=10**8, spend_cap_period=period)
    for _ in range(3):
        assert native(client, key).status_code == 200
        assert chat(client, key).status_code == 200
    spent = db.session.scalars(select(KeySpend)).all()
    assert [(row.api_key_id, row.period) for row in spent] == [(key.record.id, this_period(period))]
    assert spent[0].spent_nano == sum(record.cost_nano for record in records()) > 0
    assert_books_balance(key.record.user_id)


@pytest.mark.parametrize("dialect", ["google", "openai"])
def test_a_spent_cap_answers_402_and_holds_nothing(client, key, fake_gemini, dialect):
    set_policy(key, spend_cap_nano=5_000_000, spend_cap_period="day")
    db.session.add(KeySpend(api_key_id=key.record.id, period=this_period("day"), spent_nano=5_000_000))
    db.session.commit()
    response = native(client, key) if dialect == "google" else chat(client, key)
    assert_refused(response, 402, "spend_cap", dialect)
    assert_refused(native(client, key, COUNT), 402, "spend_cap", "google")
    assert_nothing_spent(key, fake_gemini)


def test_last_periods_spend_does_not_count(client, key):
    set_policy(key, spend_cap_nano=50_000_000, spend_cap_period="day")
    db.session.add(KeySpend(api_key_id=key.record.id, period="day:2000-01-01", spent_nano=50_000_000))
    db.session.commit()
    assert native(client, key).status_code == 200


def test_the_hold_is_lowered_to_what_is_left_of_the_cap(client, key, fake_gemini):
    # $0.02 left covers 8,000 output tokens of gemini-2.5-flash ($2.50 per 1M), not its 65,536
    set_policy(key, spend_cap_nano=20_000_000, spend_cap_period=None)
    response = native(client, key)
    assert response.status_code == 200
    cap = int(response.headers["X-Vault-Output-Cap"])
    assert 1024 <= cap < 65_536
    assert fake_gemini.calls[0].json["generationConfig"]["maxOutputTokens"] == cap
    (record,) = records()
    assert record.hold_nano <= 20_000_000


def test_a_cap_too_small_for_the_smallest_output_is_402(client, key, fake_gemini):
    set_policy(key, spend_cap_nano=1000, spend_cap_period=None)
    assert_refused(native(client, key), 402, "spend_cap", "google")
    assert_nothing_spent(key, fake_gemini)


def test_an_owners_cap_applies_to_a_key_without_one(client, key, fake_gemini):
    set_limits(key, spend_cap_nano=1000, spend_cap_period="week")
    assert_refused(chat(client, key), 402, "spend_cap", "openai")
    assert_nothing_spent(key, fake_gemini)


def test_the_sweeper_settles_an_abandoned_capped_hold_into_its_period(client, key, fake_gemini):
    from vault.billing import abandoned

    set_policy(key, spend_cap_nano=10**8, spend_cap_period="day")
    fake_gemini.gated(Reply(text="one two three four", chunks=2))
    first = client.post(STREAM, json=PROMPT, headers={"x-goog-api-key": key.plaintext}, buffered=False)
    assert first.status_code == 200
    hold = db.session.scalars(select(PendingHold)).one()
    assert hold.cap_period == this_period("day") and hold.tokens > 0
    swept = abandoned.sweep_abandoned(db.session, hold.expires_at + timedelta(seconds=1))
    assert swept == 1
    (spent,) = db.session.scalars(select(KeySpend)).all()
    (record,) = records()
    assert record.ending == "abandoned" and spent.spent_nano == record.cost_nano
    fake_gemini.release_all()
    first.close()
    assert len(records()) == 1
    assert_books_balance(key.record.user_id)


def test_a_policy_change_applies_to_the_very_next_call(client, key, fake_gemini):
    assert native(client, key).status_code == 200
    set_policy(key, allowed_models=["nothing-*"])
    assert_refused(native(client, key), 403, "allowed_models", "google")
    set_policy(key, allowed_models=None)
    set_limits(key, max_concurrency=1)
    assert native(client, key).status_code == 200
