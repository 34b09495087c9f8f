"""The fake's images endpoint (`/v1beta/openai/images/generations`) for openai 3.57.0's `images.generate`."""

import base64

import openai
import pytest

from tests.fake_gemini import faults
from tests.fake_gemini.script import Reply
from tests.fake_gemini.server import FakeGemini

MODEL = "imagen-4.0-generate-001"
KEY = "AIzaSyTEST-images"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def client(fake_gemini: FakeGemini) -> openai.OpenAI:
    return openai.OpenAI(api_key=KEY, base_url=fake_gemini.openai_base_url, max_retries=0)


def test_generate_returns_n_deterministic_pngs_and_is_recorded(client, fake_gemini):
    first = client.images.generate(model=MODEL, prompt="a red fox", n=2, response_format="b64_json")
    again = client.images.generate(model=MODEL, prompt="a red fox", n=2, response_format="b64_json")
    images = [base64.b64decode(item.b64_json) for item in first.data]
    assert len(images) == 2 and all(image.startswith(PNG) for image in images)
    assert images == [base64.b64decode(item.b64_json) for item in again.data] and images[0] != images[1]
    assert first.usage is None and first.created > 0
    call = fake_gemini.last_request
    assert (call.path, call.endpoint, call.model, call.key, call.key_source) == (
        "/v1beta/openai/images/generations", "openai.images", MODEL, KEY, "bearer")
    assert call.json == {"model": MODEL, "prompt": "a red fox", "n": 2, "response_format": "b64_json"}
    assert call.status == 200 and call.usage is None


def test_a_reply_can_hold_fewer_and_larger_images(client, fake_gemini):
    fake_gemini.enqueue(Reply(images=1, image_bytes=50_000))
    answer = client.images.generate(model=MODEL, prompt="p", n=3)
    assert len(answer.data) == 1 and len(base64.b64decode(answer.data[0].b64_json)) >= 50_000


@pytest.mark.parametrize(("kwargs", "error", "text"), [
    ({"n": 5}, openai.BadRequestError, "between 1 and 4"),
    ({"quality": "hd"}, openai.BadRequestError, 'Unknown name \\"quality'),
    ({"model": "gemini-2.5-flash"}, openai.NotFoundError, "not supported for predict"),
])
def test_bad_requests_are_refused_as_upstream_does(client, kwargs, error, text):
    with pytest.raises(error) as raised:
        client.images.generate(**({"model": MODEL, "prompt": "p"} | kwargs))
    assert text in raised.value.response.text


def test_keys_and_scripted_faults_apply(fake_gemini):
    bad = openai.OpenAI(api_key="not-a-key", base_url=fake_gemini.openai_base_url, max_retries=0)
    with pytest.raises(openai.BadRequestError):
        bad.images.generate(model=MODEL, prompt="p")
    fake_gemini.enqueue(faults.quota_exceeded(), endpoint="openai.images")
    good = openai.OpenAI(api_key=KEY, base_url=fake_gemini.openai_base_url, max_retries=0)
    with pytest.raises(openai.RateLimitError):
        good.images.generate(model=MODEL, prompt="p")
    assert len(good.images.generate(model=MODEL, prompt="p").data) == 1
