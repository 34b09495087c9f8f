"""Admin JSON API for redemption codes: `/admin/api/redemption-codes` (the role is checked in the blueprint).

Minted codes are shown once, in the answer that mints them; only their hashes are stored.
Its routes are listed in `vault/admin/__init__.py`; this module loads on the first call to one.
"""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from flask import Response, jsonify, request
from pydantic import Field

from vault.admin.auditing import audited
from vault.admin.invites_api import future_moment
from vault.auth.identity import require_user
from vault.billing import redemption
from vault.billing.money import nano_to_json, usd_to_nano
from vault.clock import isoformat, utcnow
from vault.extensions import db
from vault.jsonapi import Body, ChangeBody, parse_body, read_body
from vault.models import RedemptionCode

Amount = Annotated[Decimal, Field(strict=False, gt=0, le=1_000_000, decimal_places=9, allow_inf_nan=False)]


class MintCodesBody(ChangeBody):
    """Unknown fields are refused: a mistyped `expires_at` must not mint codes that never expire."""

    amount: Amount
    count: Annotated[int, Field(ge=1, le=redemption.MAX_BATCH)]
    expires_at: Annotated[datetime, Field(strict=False)] | None = None
    note: Annotated[str, Field(max_length=255)] = ""


class CodesQuery(Body):
    state: Literal["unused", "redeemed", "expired"] | None = None
    batch: Annotated[str, Field(max_length=32)] | None = None
    page: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    per_page: Annotated[int, Field(ge=1, le=500)] = 50


def code_json(code: RedemptionCode, now: datetime, emails: dict[int, str]) -> dict[str, Any]:
    """The public form of a code: its prefix and state, never the code."""
    return {
        "id": code.id, "prefix": code.prefix, "amount": nano_to_json(code.amount_nano),
        "amount_nano_usd": code.amount_nano, "note": code.note, "batch": code.batch, "state": code.state(now),
        "created_by": code.created_by, "created_at": isoformat(code.created_at),
        "expires_at": isoformat(code.expires_at), "redeemed_by": code.redeemed_by,
        "redeemed_by_email": emails.get(code.redeemed_by) if code.redeemed_by else None,
        "redeemed_at": isoformat(code.redeemed_at),
    }


def list_codes() -> Response:
    """A page of codes, newest first, filtered by `state` and `batch`; never the codes."""
    raw = {name: value for name, value in request.args.items() if value != ""}
    query = parse_body(CodesQuery, raw, strict=False)
    now = utcnow()
    found, total = redemption.search(db.session, now, query.state or "", query.batch or "", query.page,
                                     query.per_page)
    emails = redemption.emails(db.session, found)
    return jsonify({"redemption_codes": [code_json(code, now, emails) for code in found], "total": total,
                    "page": query.page, "per_page": query.per_page})


def mint_codes() -> tuple[Response, int]:
    """Mint `{amount, count, expires_at?, note?}`: the codes are in this answer only."""
    body = read_body(MintCodesBody)
    now = utcnow()
    minted = redemption.mint(db.session, require_user().id, usd_to_nano(body.amount), body.count,
                             future_moment(body.expires_at, now), body.note, now)
    audited("codes.mint", f"batch:{minted.batch}", None, redemption.batch_summary(minted))
    db.session.commit()
    first = minted.records[0]
    return jsonify({"batch": minted.batch, "count": len(minted.codes), "amount": nano_to_json(first.amount_nano),
                    "amount_nano_usd": first.amount_nano, "expires_at": isoformat(first.expires_at),
                    "note": first.note, "codes": minted.codes}), 201
