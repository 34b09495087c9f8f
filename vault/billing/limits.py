"""The model table: each model's token limits, refreshed from the upstream's `models.list`.

`refresh_from_upstream` pages through `GET /v1beta/models` with one pool key (a page token
belongs to the key's project, so the whole sequence uses the same key), and `store_limits`
writes what it read with a bump of the price version, so every worker's price book sees the
new limits on its next request. The limits are read through `PriceBook.limits`.
"""

import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.billing.prices import bump_price_version
from vault.clock import utcnow
from vault.errors import NoUpstream, UpstreamFailed
from vault.models import GeminiModel
from vault.pool.health import PoolHealth
from vault.pool.rotator import NoUsableKey, PoolKey
from vault.upstream.client import UpstreamClient, UpstreamRequest
from vault.upstream.failover import try_key

PAGE_SIZE = 1000
MAX_PAGES = 100


@dataclass(frozen=True)
class ModelLimits:
    """A model's token limits as `models.list` reports them."""

    model: str
    input_token_limit: int
    output_token_limit: int


def limits_from_page(page: dict) -> list[ModelLimits]:
    """The models of one `models.list` page that report both limits as positive integers."""
    found = []
    for item in page.get("models") or []:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        limits = item.get("inputTokenLimit"), item.get("outputTokenLimit")
        if all(isinstance(value, int) and not isinstance(value, bool) and value > 0 for value in limits):
            found.append(ModelLimits(item["name"].removeprefix("models/"), *limits))
    return found


def list_page(client: UpstreamClient, health: PoolHealth, key: PoolKey, token: str | None) -> dict:
    """One page of `models.list` with `key`; the outcome counts toward the key's health like any call."""
    query = [("pageSize", str(PAGE_SIZE))] + ([("pageToken", token)] if token else [])
    request = UpstreamRequest(method="GET", path="/v1beta/models", query=query, headers={}, body=b"",
                              bearer_auth=False, model="", streaming=False, dialect="google")
    answer, outcome = try_key(request, client, key)
    health.record(key, "", outcome)
    if answer is None or answer.status != 200:
        raise UpstreamFailed(f"Listing models with key {key.masked} failed: {outcome.summary}.")
    try:
        page = json.loads(answer.body)
    except ValueError:
        raise UpstreamFailed("The upstream's model list was not JSON.") from None
    if not isinstance(page, dict):
        raise UpstreamFailed("The upstream's model list was not a JSON object.")
    return page


def refresh_from_upstream(client: UpstreamClient, health: PoolHealth) -> list[ModelLimits]:
    """Every model's limits, following `nextPageToken` with one usable pool key."""
    try:
        key = health.pick("", set())
    except NoUsableKey:
        raise NoUpstream("No usable upstream key to list models with.") from None
    found, token = [], None
    for _ in range(MAX_PAGES):
        page = list_page(client, health, key, token)
        found += limits_from_page(page)
        token = page.get("nextPageToken")
        if not isinstance(token, str) or not token:
            return found
    raise UpstreamFailed(f"The upstream's model list went on for more than {MAX_PAGES} pages.")


def store_limits(session: Session, found: list[ModelLimits]) -> list[str]:
    """Create or update the rows of `found` (models not listed are kept) and bump the price
    version if anything changed; returns the models whose limits changed."""
    rows = {row.model: row for row in session.scalars(select(GeminiModel))}
    changed = []
    for item in found:
        row = rows.get(item.model) or GeminiModel(model=item.model)
        if (row.input_token_limit, row.output_token_limit) != (item.input_token_limit, item.output_token_limit):
            changed.append(item.model)
        row.input_token_limit, row.output_token_limit = item.input_token_limit, item.output_token_limit
        row.source, row.refreshed_at = "upstream", utcnow()
        session.add(row)
    if changed:
        bump_price_version(session)
    return changed


def list_models(session: Session) -> list[GeminiModel]:
    """The model table, by model id."""
    return list(session.scalars(select(GeminiModel).order_by(GeminiModel.model)))
