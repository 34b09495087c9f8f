"""Key policies against a real server (gunicorn + gevent, two workers) on SQLite and PostgreSQL:
the official SDKs raise their matching exceptions, and under 50 concurrent requests a
concurrency limit and a spend cap admit exactly what they allow."""

import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta

import openai
import pytest
import requests
import sqlalchemy
from google import genai
from google.genai import errors, types

BACKENDS = ["sqlite", "postgresql"]
CONCURRENT = 50


def key_id(stack) -> int:
    keys = requests.get(f"{stack.base_url}/api-keys/", headers={"Authorization": f"Bearer {stack.user_token}"},
                        timeout=10).json()
    return keys[0]["id"]


def set_policy(stack, **fields) -> None:
    response = requests.patch(f"{stack.base_url}/admin/api/api-keys/{key_id(stack)}", json=fields,
                              headers=stack.admin(), timeout=10)
    assert response.status_code == 200, response.text


def openai_client(stack) -> openai.OpenAI:
    return openai.OpenAI(api_key=stack.vault_key, base_url=f"{stack.base_url}/v1", max_retries=0)


def genai_client(stack) -> genai.Client:
    return genai.Client(api_key=stack.vault_key,
                        http_options=types.HttpOptions(base_url=stack.base_url, api_version="v1beta"))


def chat(stack, model="gemini-2.5-flash"):
    return openai_client(stack).chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])


def generate(stack, model="gemini-2.5-flash"):
    client = genai_client(stack)  # kept: a client dropped mid-call closes its connection pool
    return client.models.generate_content(model=model, contents="hi")


def assert_sdks_refuse(stack, status: int, policy: str, openai_error: type, model="gemini-2.5-flash") -> None:
    with pytest.raises(openai_error) as raised:
        chat(stack, model)
    assert raised.value.status_code == status and f"{policy}: " in str(raised.value)
    with pytest.raises(errors.ClientError) as native:
        generate(stack, model)
    assert native.value.code == status and f"{policy}: " in str(native.value)


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_policy_refusal_is_the_sdks_own_exception(own_stack, backend):
    stack = own_stack(backend=backend, WEB_CONCURRENCY="2")
    assert chat(stack).choices[0].message.content
    set_policy(stack, allowed_models=["gemini-2.5-flash-lite"])
    assert_sdks_refuse(stack, 403, "allowed_models", openai.PermissionDeniedError)
    assert generate(stack, "gemini-2.5-flash-lite").text
    set_policy(stack, allowed_models=None, allowed_ips=["192.0.2.0/24"])
    assert_sdks_refuse(stack, 403, "allowed_ips", openai.PermissionDeniedError)
    set_policy(stack, allowed_ips=["127.0.0.0/8", "::1/128"],
               expires_at=(datetime.now(UTC) - timedelta(minutes=1)).isoformat())
    assert_sdks_refuse(stack, 403, "expires_at", openai.PermissionDeniedError)
    set_policy(stack, expires_at=None, spend_cap="0.000001", spend_cap_period="day")
    assert_sdks_refuse(stack, 402, "spend_cap", openai.APIStatusError)
    # Without Redis each of the two workers counts on its own: of three calls, one worker gets two.
    set_policy(stack, spend_cap=None, rate_limit_rpm=1)
    refusals = []
    for _ in range(3):
        try:
            chat(stack)
        except openai.RateLimitError as exc:
            refusals.append(exc)
    assert refusals and all("rate_limit_rpm: " in str(exc) and int(exc.response.headers["Retry-After"]) >= 1
                            for exc in refusals)
    with pytest.raises(errors.ClientError) as native:  # both workers' windows are full now
        for _ in range(3):
            generate(stack)
    assert native.value.code == 429


def database(stack) -> sqlalchemy.Engine:
    return sqlalchemy.create_engine(stack.environ["DATABASE_URL"])


def fire(stack, count: int, max_tokens: int = 64) -> tuple[ThreadPoolExecutor, list[Future]]:
    """`count` chat calls at once (raw requests: the SDKs would retry 429s); their futures."""
    body = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}], "max_tokens": max_tokens}

    def one(_):
        return requests.post(f"{stack.base_url}/v1/chat/completions", json=body, timeout=60,
                             headers={"Authorization": f"Bearer {stack.vault_key}"})

    pool = ThreadPoolExecutor(count)
    return pool, [pool.submit(one, index) for index in range(count)]


def wait_done(futures: list[Future], count: int, timeout: float = 60) -> list:
    """Wait (on the futures themselves) until `count` of them are done; their responses."""
    deadline = time.monotonic() + timeout
    pending = [future for future in futures if not future.done()]
    while len(futures) - len(pending) < count:
        left = deadline - time.monotonic()
        assert left > 0, f"only {len(futures) - len(pending)} of {count} calls answered"
        _, still = wait(pending, timeout=left, return_when=FIRST_COMPLETED)
        pending = list(still)
    return [future.result() for future in futures if future.done()]


def wait_settled(connection, records: int) -> None:
    """Wait until every hold is settled and `records` usage records are written (a refused call
    takes no hold, and its record is written behind its answer too): settlements are written by
    another process, so there is no event to wait on but the rows themselves."""
    for _ in range(800):
        open_holds = connection.scalar(sqlalchemy.text("SELECT count(*) FROM pending_holds"))
        written = connection.scalar(sqlalchemy.text("SELECT count(*) FROM usage_records"))
        connection.rollback()
        if open_holds == 0 and written >= records:
            return
        time.sleep(0.025)
    raise AssertionError(f"after 20 s: {open_holds} holds still open, {written} of {records} records written")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_concurrency_limit_admits_exactly_its_number_of_50_concurrent_calls(own_stack, backend):
    stack = own_stack(backend=backend, WEB_CONCURRENCY="2")
    set_policy(stack, max_concurrency=5)
    hang = stack.fake.hang(times=None)
    pool, futures = fire(stack, CONCURRENT)
    refused = wait_done(futures, CONCURRENT - 5)
    assert stack.fake.wait_for_calls(5, timeout=30)
    assert {response.status_code for response in refused} == {429} and len(stack.fake.calls) == 5
    assert all(response.json()["error"]["message"].startswith("max_concurrency: ") for response in refused)
    hang.release()
    answers = [future.result() for future in futures]
    pool.shutdown()
    assert sorted(response.status_code for response in answers) == [200] * 5 + [429] * (CONCURRENT - 5)
    with database(stack).connect() as connection:
        wait_settled(connection, CONCURRENT)
        assert connection.scalar(sqlalchemy.text("SELECT count(*) FROM usage_records")) == CONCURRENT


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_spend_cap_is_never_overshot_by_50_concurrent_calls(own_stack, backend):
    stack = own_stack(backend=backend, WEB_CONCURRENCY="2")
    set_policy(stack, spend_cap="0.002", spend_cap_period="month")
    cap, engine = 2_000_000, None
    hang = stack.fake.hang(times=None)
    pool, futures = fire(stack, CONCURRENT, max_tokens=100)
    engine = database(stack)
    with engine.connect() as connection:
        def held() -> tuple[int, int]:
            row = connection.execute(sqlalchemy.text("SELECT count(*), coalesce(sum(amount_nano), 0), "
                                                     "coalesce(max(amount_nano), 0) FROM pending_holds")).one()
            connection.rollback()
            return row
        refused = wait_done(futures, 1)
        count, total, largest = held()
        while count + len(refused) < CONCURRENT:  # every call is either holding or answered
            refused = wait_done(futures, len(refused) + 1)
            count, total, largest = held()
    assert {response.status_code for response in refused} == {402}
    assert all(response.json()["error"]["message"].startswith("spend_cap: ") for response in refused)
    assert stack.fake.wait_for_calls(count, timeout=30) and len(stack.fake.calls) == count >= 1
    assert total <= cap and cap - total < largest  # held to the cap, and nobody refused while it had room
    hang.release()
    answers = [future.result() for future in futures]
    pool.shutdown()
    assert sum(response.status_code == 200 for response in answers) == count
    with engine.connect() as connection:
        query = lambda sql: connection.scalar(sqlalchemy.text(sql))  # noqa: E731
        wait_settled(connection, CONCURRENT)
        spent = query("SELECT spent_nano FROM key_spend")
        assert spent == query("SELECT sum(cost_nano) FROM usage_records WHERE api_key_id IS NOT NULL") <= cap
        assert query("SELECT count(*) FROM usage_records") == CONCURRENT
