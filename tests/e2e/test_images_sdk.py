"""`client.images.generate` of the official openai SDK through a real gunicorn Vault: billed per image, exactly."""

import base64
import time

import openai
import pytest
import requests

from tests.fake_gemini import Reply
from vault.billing.money import usd_to_nano

IMAGEN = "imagen-4.0-generate-001"
PRICE = usd_to_nano("0.04")  # the catalog's price, seeded by `billing seed-prices`


def balance(stack) -> int:
    me = requests.get(f"{stack.base_url}/auth/users/me", headers={"Authorization": f"Bearer {stack.user_token}"},
                      timeout=30)
    return me.json()["balance_nano_usd"]


def images_records(stack, count: int) -> list[dict]:
    """The images calls' usage records, once `count` have settled (settlements are batched)."""
    for _ in range(300):
        items = requests.get(f"{stack.base_url}/admin/api/usage?per_page=500", headers=stack.admin(),
                             timeout=30).json()["items"]
        found = [item for item in items if item["endpoint"] == "images.generations"]
        if len(found) >= count:
            return sorted(found, key=lambda item: item["id"])
        time.sleep(0.05)
    raise AssertionError(f"{count} images records expected, {len(found)} settled")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_images_through_the_sdk_are_billed_per_image(own_stack, backend):
    stack = own_stack(key_count=2, backend=backend)
    prices = requests.get(f"{stack.base_url}/admin/api/prices/{IMAGEN}", headers=stack.admin(), timeout=10)
    assert prices.json()["image"] == 0.04  # `flask db upgrade` seeded Imagen's image prices
    client = openai.OpenAI(api_key=stack.vault_key, base_url=f"{stack.base_url}/v1", max_retries=0)
    before = balance(stack)

    answer = client.images.generate(model=IMAGEN, prompt="a red fox in snow", n=2, response_format="b64_json")
    assert len(answer.data) == 2
    assert all(base64.b64decode(image.b64_json).startswith(b"\x89PNG\r\n\x1a\n") for image in answer.data)
    (record,) = images_records(stack, 1)
    assert (record["model"], record["status"], record["image_count"]) == (IMAGEN, 200, 2)
    assert record["cost_nano_usd"] == 2 * PRICE and usd_to_nano(str(record["hold"])) == 2 * PRICE
    assert balance(stack) == before - 2 * PRICE
    (sent,) = [call for call in stack.fake.calls if call.endpoint == "openai.images"]
    assert sent.json == {"model": IMAGEN, "prompt": "a red fox in snow", "n": 2, "response_format": "b64_json"}
    assert sent.key in stack.upstream_keys and sent.path == "/v1beta/openai/images/generations"

    # Gemini's own OpenAI base works the same; an answer with fewer images is charged for those only.
    stack.fake.enqueue(Reply(images=1))
    gemini_base = openai.OpenAI(api_key=stack.vault_key, base_url=f"{stack.base_url}/v1beta/openai/", max_retries=0)
    assert len(gemini_base.images.generate(model=IMAGEN, prompt="two owls", n=3).data) == 1
    assert [r["image_count"] for r in images_records(stack, 2)] == [2, 1]
    assert balance(stack) == before - 3 * PRICE

    # A field Gemini does not take is refused by the Vault, in the SDK's own error, and costs nothing.
    with pytest.raises(openai.BadRequestError) as refused:
        client.images.generate(model=IMAGEN, prompt="p", quality="hd")
    assert "'quality'" in str(refused.value)
    assert len([call for call in stack.fake.calls if call.endpoint == "openai.images"]) == 2
    assert balance(stack) == before - 3 * PRICE
