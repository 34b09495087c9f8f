"""Images (`POST /v1/images/generations`): the body's allow-list, billing per image, failures that cost nothing."""

import json
from decimal import Decimal

import pytest

from tests.billing.books import assert_books_balance, balance_of, open_holds, records
from tests.fake_gemini import Reply, faults
from vault.billing import estimate
from vault.billing.money import usd_to_nano
from vault.billing.prices import FREE, Price, PriceInput, upsert_price
from vault.errors import BadRequest
from vault.extensions import db
from vault.proxy.images import MAX_PROMPT_CHARS, image_body, images_returned
from vault.proxy.routes import IMAGES, resolve
from vault.runtime import runtime

IMAGEN = "imagen-4.0-generate-001"
PRICE = usd_to_nano("0.04")
PATH = "/v1/images/generations"
GOOD = {"model": IMAGEN, "prompt": "a lighthouse at dusk"}


# The body's allow-list, as plain functions

@pytest.mark.parametrize(("payload", "sent"), [
    (GOOD, GOOD),
    (GOOD | {"model": f"models/{IMAGEN}", "n": 4, "size": "1024x1024", "response_format": "b64_json"},
     GOOD | {"n": 4, "size": "1024x1024", "response_format": "b64_json"}),
    (GOOD | {"n": None, "size": None, "stream": False}, GOOD),
])
def test_the_body_is_rebuilt_from_the_allowed_fields(payload, sent):
    body, model, n = image_body(payload)
    assert json.loads(body) == sent and model == IMAGEN and n == sent.get("n", 1)
    assert b" " not in body.replace(b"a lighthouse at dusk", b"")


@pytest.mark.parametrize(("payload", "named"), [
    (GOOD | {"quality": "hd"}, "'quality'"),
    (GOOD | {"style": "vivid"}, "'style'"),
    (GOOD | {"user": "u-1"}, "'user'"),
    (GOOD | {"background": "transparent", "zzz": 1}, "'background'"),
    (GOOD | {"key": "AIzaSy" + "k" * 33}, "'key'"),
    (GOOD | {"stream": True}, "stream"),
    (GOOD | {"stream": 0}, "stream"),
    (GOOD | {"n": 0}, "'n'"),
    (GOOD | {"n": 5}, "'n'"),
    (GOOD | {"n": "2"}, "'n'"),
    (GOOD | {"n": True}, "'n'"),
    (GOOD | {"n": 2.0}, "'n'"),
    (GOOD | {"size": "big"}, "'size'"),
    (GOOD | {"size": 1024}, "'size'"),
    (GOOD | {"response_format": "url"}, "'response_format'"),
    (GOOD | {"prompt": ""}, "'prompt'"),
    (GOOD | {"prompt": ["a", "b"]}, "'prompt'"),
    (GOOD | {"prompt": "x" * (MAX_PROMPT_CHARS + 1)}, "'prompt'"),
    ({"prompt": "p"}, "'model'"),
    (GOOD | {"model": 7}, "'model'"),
    (GOOD | {"model": "../../v1beta/files"}, "model id"),
    (GOOD | {"model": "imagen?key=x"}, "model id"),
])
def test_anything_else_is_refused_naming_it(payload, named):
    with pytest.raises(BadRequest) as refused:
        image_body(payload)
    assert named in refused.value.message


def test_both_paths_are_the_images_action():
    for path in (PATH, "/v1beta/openai/images/generations"):
        call = resolve("POST", path, [], True)
        assert call.action is IMAGES and call.upstream_path == "/v1beta/openai/images/generations"
    assert IMAGES.billable and IMAGES.dialect == "openai" and not IMAGES.streaming


@pytest.mark.parametrize(("body", "asked", "count"), [
    (b'{"created":1,"data":[{"b64_json":"AAA="},{"b64_json": "BBB="}]}', 4, 2),
    (b'{"created":1,"data":[{"b64_json":"AAA="},{"b64_json":"BBB="},{"b64_json":"CCC="}]}', 2, 2),
    (b'{"data":[{"b64_json":"AAA=","revised_prompt":"say \\"b64_json\\": \\"x\\""}],"format":"b64_json"}', 4, 1),
    (b'{"data":[{"b64_json":null,"url":"https://example.com/a.png"}]}', 4, 1),
    (b'{"created":1,"data":[]}', 4, 0),
    (b"not json", 4, 0),
])
def test_images_are_counted_on_the_bytes(body, asked, count):
    assert images_returned(body, asked) == count


def test_the_hold_of_images_is_n_times_the_image_price():
    price = Price(IMAGEN, FREE.base, image=PRICE)
    request = estimate.read_request("images.generations", GOOD | {"n": 3}, 100)
    plan = estimate.plan_hold(request, price, (480, 8192), 1024, floor_nano=1)
    assert (request.images, plan.amount, plan.minimum, plan.estimate_nano) == (3, 3 * PRICE, 3 * PRICE, 3 * PRICE)
    assert plan.cap_for(plan.amount) == 0 and estimate.read_request("images.generations", GOOD, 10).images == 1


# Through the proxy, in front of the fake upstream

@pytest.fixture
def priced(app):
    """Imagen 4 at $0.04 an image (token prices 0, as the catalog has them)."""
    upsert_price(db.session, IMAGEN, PriceInput(input=Decimal(0), output=Decimal(0), image=Decimal("0.04")))
    db.session.commit()
    runtime().prices.refresh()


def generate(client, key, body: dict, path: str = PATH):
    """The answer, closed: its close callback has settled the call."""
    response = client.post(path, json=body, headers={"Authorization": f"Bearer {key.plaintext}"})
    response.close()
    return response


def images_calls(fake) -> list:
    return [call for call in fake.calls if call.endpoint == "openai.images"]


@pytest.mark.parametrize("path", [PATH, "/v1beta/openai/images/generations"])
@pytest.mark.parametrize("n", [1, 3])
def test_images_are_held_and_charged_per_image(client, proxied_key, fake_gemini, priced, path, n):
    key = proxied_key("1.00")
    user_id = key.record.user_id
    response = generate(client, key, GOOD | {"n": n, "response_format": "b64_json"}, path)
    assert response.status_code == 200
    assert len(response.get_json()["data"]) == n
    (record,) = records(user_id)
    assert (record.endpoint, record.model, record.status, record.image_count) == ("images.generations", IMAGEN, 200, n)
    assert record.cost_nano == n * PRICE and record.hold_nano == n * PRICE and record.total_tokens == 0
    assert balance_of(user_id) == usd_to_nano("1.00") - n * PRICE
    (sent,) = images_calls(fake_gemini)
    assert sent.json == GOOD | {"n": n, "response_format": "b64_json"}
    assert open_holds(user_id) == []
    assert_books_balance(user_id)


def test_only_the_images_returned_are_charged(client, proxied_key, fake_gemini, priced):
    key = proxied_key("1.00")
    fake_gemini.enqueue(Reply(images=1))  # the safety filter dropped the others
    response = generate(client, key, GOOD | {"n": 4})
    assert response.status_code == 200 and len(response.get_json()["data"]) == 1
    (record,) = records(key.record.user_id)
    assert (record.image_count, record.cost_nano, record.hold_nano) == (1, PRICE, 4 * PRICE)
    assert balance_of(key.record.user_id) == usd_to_nano("1.00") - PRICE


def test_a_large_answer_is_relayed_whole(client, proxied_key, fake_gemini, priced):
    key = proxied_key("1.00")
    fake_gemini.enqueue(Reply(image_bytes=3_000_000))
    response = generate(client, key, GOOD | {"n": 4})
    assert response.status_code == 200 and len(response.data) > 16_000_000
    assert records(key.record.user_id)[0].image_count == 4


@pytest.mark.parametrize(("body", "status"), [
    (GOOD | {"quality": "hd"}, 400),
    (GOOD | {"n": 9}, 400),
    (GOOD | {"stream": True}, 400),
    (GOOD | {"prompt": "x" * (MAX_PROMPT_CHARS + 1)}, 400),
    (GOOD | {"prompt": "x" * 100_000}, 413),  # past the body limit: never even parsed
])
def test_bad_bodies_are_refused_in_openai_dialect_and_cost_nothing(client, proxied_key, fake_gemini, priced, body,
                                                                  status):
    key = proxied_key("1.00")
    response = generate(client, key, body)
    assert response.status_code == status
    assert response.get_json()["error"]["type"] == "invalid_request_error"
    assert images_calls(fake_gemini) == []
    assert balance_of(key.record.user_id) == usd_to_nano("1.00")
    assert all(record.cost_nano == 0 for record in records(key.record.user_id))


def test_a_model_without_an_image_price_is_refused(client, proxied_key, fake_gemini, priced):
    key = proxied_key("1.00")
    response = generate(client, key, GOOD | {"model": "imagen-4.0-ultra-generate-001"})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["type"] == "invalid_request_error" and "no per-image price" in error["message"]
    assert images_calls(fake_gemini) == [] and balance_of(key.record.user_id) == usd_to_nano("1.00")


def test_a_balance_that_cannot_cover_every_image_is_402(client, proxied_key, fake_gemini, priced):
    key = proxied_key("0.05")  # 0.05 + the 0.01 overdraft covers one image, not two
    response = generate(client, key, GOOD | {"n": 2})
    assert response.status_code == 402 and images_calls(fake_gemini) == []
    assert generate(client, key, GOOD | {"n": 1}).status_code == 200
    assert balance_of(key.record.user_id) == usd_to_nano("0.05") - PRICE
    assert_books_balance(key.record.user_id)


def test_a_429_on_every_key_costs_nothing(client, proxied_key, fake_gemini, priced):
    key = proxied_key("1.00")
    fake_gemini.enqueue(faults.quota_exceeded(retry_delay="30s"), endpoint="openai.images", times=None)
    response = generate(client, key, GOOD | {"n": 2})
    assert response.status_code == 429 and response.headers["Retry-After"]
    assert response.get_json()["error"]["type"] == "rate_limit_error"
    (record,) = records(key.record.user_id)
    assert (record.status, record.cost_nano, record.image_count) == (429, 0, 0)
    assert balance_of(key.record.user_id) == usd_to_nano("1.00") and open_holds() == []


def test_an_upstream_refusal_is_relayed_masked_and_free(client, proxied_key, fake_gemini, priced):
    key = proxied_key("1.00")
    upsert_price(db.session, "gemini-2.5-flash", PriceInput(input=Decimal(1), output=Decimal(1), image=Decimal(1)))
    db.session.commit()
    response = generate(client, key, GOOD | {"model": "gemini-2.5-flash"})  # the fake serves no images with it
    assert response.status_code == 404, response.get_json()
    error = response.get_json()["error"]
    assert error["type"] == "not_found_error" and "predict" in error["message"]
    secret = images_calls(fake_gemini)[0].key
    assert secret not in response.get_data(as_text=True)
    (record,) = records(key.record.user_id)
    assert (record.status, record.cost_nano) == (404, 0) and balance_of(key.record.user_id) == usd_to_nano("1.00")
