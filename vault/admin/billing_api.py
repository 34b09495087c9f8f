"""Admin JSON API for money: balances, prices, and the usage ledger.

Its routes are listed in `vault/admin/__init__.py`; this module loads on the first call to one.
"""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from flask import Response, jsonify, request
from pydantic import Field, model_validator
from sqlalchemy import select

from vault import accounts
from vault.admin import auditing
from vault.auth.identity import require_user
from vault.billing import balances, prices, queries
from vault.billing.money import nano_to_json, usd_to_nano
from vault.clock import isoformat, utcnow
from vault.errors import NotFound, ValidationFailed
from vault.extensions import db
from vault.inbound import INTEGER_MAX
from vault.jsonapi import Body, ChangeBody, api_key_report_json, parse_body, read_body, user_json, utc_moment
from vault.models import BalanceAdjustment, GeminiModel, ModelPrice, User
from vault.proxy.dialects import normalize_model
from vault.runtime import runtime

Usd = Annotated[Decimal, Field(strict=False, ge=-1_000_000, le=1_000_000, decimal_places=9, allow_inf_nan=False)]
PricePerMillion = Annotated[Decimal, Field(strict=False, ge=0, le=100_000, decimal_places=9, allow_inf_nan=False)]
# Per 1,000 requests, as Google lists it; six decimals keep the price of one request a whole nano-USD.
FeePerThousand = Annotated[Decimal, Field(strict=False, ge=0, le=100_000, decimal_places=6, allow_inf_nan=False)]
# USD per generated image, to the nano-USD.
PricePerImage = Annotated[Decimal, Field(strict=False, ge=0, le=1_000, decimal_places=9, allow_inf_nan=False)]


class BalanceBody(Body):
    balance: Usd | None = None
    balance_delta: Usd | None = None
    reason: Annotated[str, Field(max_length=255)] = ""

    @model_validator(mode="after")
    def one_change_with_a_reason(self) -> "BalanceBody":
        if self.balance is not None and self.balance_delta is not None:
            raise ValueError("send either balance (set) or balance_delta (add), not both")
        if (self.balance is not None or self.balance_delta is not None) and not self.reason.strip():
            raise ValueError("a balance change needs a reason")
        return self


class PriceBody(ChangeBody):
    input: PricePerMillion
    output: PricePerMillion
    cached_input: PricePerMillion | None = None
    tier_threshold: Annotated[int, Field(gt=0, le=10**9)] | None = None
    input_above: PricePerMillion | None = None
    output_above: PricePerMillion | None = None
    cached_input_above: PricePerMillion | None = None
    audio_input: PricePerMillion | None = None
    cached_audio_input: PricePerMillion | None = None
    grounding_fee: FeePerThousand | None = None
    grounding_unit: Literal["prompt", "query"] = "prompt"
    image: PricePerImage | None = None


def change_balance(user: User, body: BalanceBody) -> None:
    """Apply an admin's balance change to `user`, recorded in the ledger."""
    admin_id, reason = require_user().id, body.reason.strip()
    if body.balance is not None:
        adjustment = balances.set_balance(db.session, user.id, admin_id, usd_to_nano(body.balance), reason)
    elif body.balance_delta is not None:
        adjustment = balances.add_to_balance(db.session, user.id, admin_id, usd_to_nano(body.balance_delta), reason)
    else:
        return
    auditing.audit_balance(user.id, adjustment)


def adjustment_json(adjustment: BalanceAdjustment) -> dict[str, Any]:
    return {"id": adjustment.id, "kind": adjustment.kind, "amount": nano_to_json(adjustment.amount_nano),
            "admin_id": adjustment.admin_id, "reason": adjustment.reason,
            "created_at": isoformat(adjustment.created_at)}


def ledger_json(check: balances.LedgerCheck) -> dict[str, Any]:
    """A user's balance checked against the ledger (nano-USD)."""
    return {"stored_nano_usd": check.stored, "expected_nano_usd": check.expected,
            "difference_nano_usd": check.difference, "consistent": check.consistent,
            "adjustments_nano_usd": check.adjustments, "settled_cost_nano_usd": check.settled,
            "open_holds_nano_usd": check.held, "open_holds": check.open_holds}


def show_user(user_id: int) -> Response:
    """One user with their limits, their keys (policy and standing), the ledger of balance changes and
    the balance checked against it."""
    user, now = accounts.get_user(db.session, user_id), utcnow()
    adjustments = balances.recent_adjustments(db.session, user_id)
    (check,) = balances.check_balances(db.session, user_id)
    return jsonify(user_json(user) | {
        "api_keys": [api_key_report_json(key, now) for key in user.api_keys],
        "adjustments": [adjustment_json(a) for a in adjustments],
        "ledger_balance_nano_usd": check.expected,
        "ledger": ledger_json(check),
    })


def usd(nano: int | None) -> float | None:
    """nano-USD as a JSON number of USD; None stays None."""
    return None if nano is None else nano_to_json(nano)


def price_json(row: ModelPrice) -> dict[str, Any]:
    """A model's prices: USD per 1M tokens, the grounding fee in USD per 1,000 grounded prompts or queries,
    `image` in USD per generated image (null: the model makes no images through the Vault)."""
    fee = row.grounding_fee_nano
    return {"model": row.model, "input": usd(row.input_nano), "output": usd(row.output_nano),
            "cached_input": usd(row.cached_nano), "tier_threshold": row.tier_threshold,
            "input_above": usd(row.input_above_nano), "output_above": usd(row.output_above_nano),
            "cached_input_above": usd(row.cached_above_nano), "audio_input": usd(row.audio_input_nano),
            "cached_audio_input": usd(row.audio_cached_nano), "grounding_fee": usd(None if fee is None else fee * 1000),
            "grounding_unit": row.grounding_unit, "image": usd(row.image_nano), "updated_at": isoformat(row.updated_at)}


def fallback_json(fallback: prices.Price) -> dict[str, Any]:
    """What models without a price pay (audio at the input price, grounding per prompt)."""
    base, above = fallback.base, fallback.above
    return {"input": nano_to_json(base.input), "output": nano_to_json(base.output),
            "cached_input": nano_to_json(base.cached), "tier_threshold": fallback.tier_threshold,
            "input_above": usd(above and above.input), "output_above": usd(above and above.output),
            "cached_input_above": usd(above and above.cached), "grounding_fee": nano_to_json(base.grounding * 1000)}


def list_prices() -> Response:
    """Every model price (USD per 1M tokens) and the fallback for unknown models."""
    rows = db.session.scalars(select(ModelPrice).order_by(ModelPrice.model))
    return jsonify({"prices": [price_json(row) for row in rows], "fallback": fallback_json(runtime().prices.fallback)})


def find_price(model: str) -> ModelPrice:
    row = db.session.get(ModelPrice, normalize_model(model))
    if row is None:
        raise NotFound("No price for this model; unknown models are charged the fallback price.")
    return row


def show_price(model: str) -> Response:
    return jsonify(price_json(find_price(model)))


def put_price(model: str) -> Response:
    """Create or replace a model's prices (USD per 1M tokens)."""
    body = read_body(PriceBody)
    name = normalize_model(model)
    if not name:
        raise ValidationFailed(fields={"model": "a model name is required"})
    before = auditing.price_row(db.session.get(ModelPrice, name))
    row = prices.upsert_price(db.session, name, prices.PriceInput(**body.model_dump()))
    auditing.audited_change("price.put", f"price:{name}", before, auditing.price_row(row))
    db.session.commit()
    runtime().prices.refresh()
    return jsonify(price_json(row))


def delete_price(model: str) -> tuple[str, int]:
    row = find_price(model)
    before = auditing.price_row(row)
    prices.remove_price(db.session, row)
    auditing.audited("price.delete", f"price:{row.model}", before, None)
    db.session.commit()
    runtime().prices.refresh()
    return "", 204


def model_json(row: GeminiModel) -> dict[str, Any]:
    """A model's token limits and where they came from."""
    return {"model": row.model, "input_token_limit": row.input_token_limit,
            "output_token_limit": row.output_token_limit, "source": row.source,
            "refreshed_at": isoformat(row.refreshed_at)}


class UsageQuery(Body):
    user_id: Annotated[int, Field(gt=0, le=INTEGER_MAX)] | None = None
    api_key_id: Annotated[int, Field(gt=0, le=INTEGER_MAX)] | None = None
    model: Annotated[str, Field(max_length=128)] | None = None
    status: Annotated[int, Field(ge=100, le=599)] | None = None
    since: datetime | None = None
    until: datetime | None = None
    page: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    per_page: Annotated[int, Field(ge=1, le=500)] = 50


def read_usage_query() -> UsageQuery:
    """The usage filters from the query string (numbers and ISO 8601 times)."""
    raw = {name: value for name, value in request.args.items() if value != ""}
    query = parse_body(UsageQuery, raw, strict=False)
    for moment in ("since", "until"):
        setattr(query, moment, utc_moment(getattr(query, moment), moment))
    return query


def list_usage() -> Response:
    """Usage records, newest first, filtered and paginated."""
    query = read_usage_query()
    filters = queries.Filters(**query.model_dump(exclude={"page", "per_page"}))
    records, total = queries.page(db.session, filters, query.page, query.per_page)
    return jsonify({"items": [queries.record_json(record) for record in records], "total": total,
                    "page": query.page, "per_page": query.per_page})


def usage_summary() -> Response:
    """Requests, tokens and cost per day and model, with the same filters."""
    query = read_usage_query()
    filters = queries.Filters(**query.model_dump(exclude={"page", "per_page"}))
    return jsonify({"rows": queries.by_day_and_model(db.session, filters)})

