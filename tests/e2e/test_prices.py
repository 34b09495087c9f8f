"""A price edit applies to the next request on every worker: two gunicorn workers, a burst after the edit.

Each worker caches the price table; the timed re-read is pushed out of reach here (an hour),
so only the version stamp read with each request's key lookup can bring the new price in.
"""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.e2e.server import flask_cli
from tests.fake_gemini import Reply
from vault.billing.money import usd_to_nano
from vault.billing.prices import Rates, cost_nano
from vault.billing.usage import Usage

BURST = 48
GENERATE = "/v1beta/models/gemini-2.5-flash:generateContent"
STREAM = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"


def burst(stack, marker: str) -> None:
    """BURST concurrent native calls (half streamed), all answered 200."""
    def one(n: int) -> int:
        body = {"contents": [{"role": "user", "parts": [{"text": f"{marker} request {n}"}]}]}
        path = STREAM if n % 2 else GENERATE
        return requests.post(f"{stack.base_url}{path}", json=body, headers={"x-goog-api-key": stack.vault_key},
                             timeout=60).status_code

    with ThreadPoolExecutor(max_workers=BURST) as pool:
        assert list(pool.map(one, range(BURST))) == [200] * BURST


def records_after(stack, last_id: int, count: int) -> list[dict]:
    """The `count` usage records newer than `last_id`, once all are settled."""
    for _ in range(300):
        page = requests.get(f"{stack.base_url}/admin/api/usage?per_page=500", headers=stack.admin(), timeout=30).json()
        fresh = [item for item in page["items"] if item["id"] > last_id]
        if len(fresh) >= count:
            return fresh
        time.sleep(0.05)
    logs = [line for line in stack.server.log_lines if "GET /admin/api/usage" not in line]
    raise AssertionError(f"only {len(fresh)} of {count} records settled:\n" + "\n".join(logs[-40:]))


def billed_at(records: list[dict], rates: Rates) -> None:
    """Every record was priced with `rates` and cost exactly its tokens at them."""
    for record in records:
        assert (usd_to_nano(str(record["price"]["input"])), usd_to_nano(str(record["price"]["output"]))) == (
            rates.input, rates.output), record
        usage = Usage(prompt=record["prompt_tokens"], cached=record["cached_tokens"],
                      candidates=record["candidates_tokens"], thoughts=record["thoughts_tokens"])
        assert record["cost_nano_usd"] == cost_nano(usage, rates), record


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_price_edit_applies_to_the_next_request_on_every_worker(own_stack, backend):
    stack = own_stack(key_count=2, backend=backend, WEB_CONCURRENCY="2", VAULT_PRICE_REFRESH_SECONDS="3600")
    stack.fake.enqueue(Reply(text="one two three four five", chunks=2), times=None)
    seeded = Rates(usd_to_nano("0.30"), usd_to_nano("2.50"), usd_to_nano("0.03"))

    burst(stack, "warm")  # both workers load the price book at the seeded price
    warm = records_after(stack, 0, BURST)
    billed_at(warm, seeded)
    last = max(record["id"] for record in warm)

    new = {"input": "3.00", "output": "25.00", "cached_input": "0.30"}
    edited = requests.put(f"{stack.base_url}/admin/api/prices/gemini-2.5-flash", json=new, headers=stack.admin(),
                          timeout=30)
    assert edited.status_code == 200
    burst(stack, "edited")
    after_edit = records_after(stack, last, BURST)
    billed_at(after_edit, Rates(usd_to_nano("3.00"), usd_to_nano("25.00"), usd_to_nano("0.30")))
    last = max(record["id"] for record in after_edit)

    # An operator command in another process counts as much as the admin API.
    reseeded = flask_cli(stack.environ, "billing", "seed-prices", "--force")
    assert reseeded.returncode == 0, reseeded.stderr
    burst(stack, "reseeded")
    billed_at(records_after(stack, last, BURST), seeded)
