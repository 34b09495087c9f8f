"""Operations and schemas of redemption codes: `/admin/api/redemption-codes` and `POST /api/redeem`."""

from pydantic.json_schema import models_json_schema

from vault.admin.codes_api import MintCodesBody
from vault.dashboard.api import RedeemBody
from vault.openapi.paths import USER_WRITE, api, json_body, reply
from vault.openapi.schemas import INT, STR, Schema, array, moment, obj, ref, typed, usd

BODY_NOTES = {
    "MintCodesBody": "`amount` in USD per code (above 0, at most 1,000,000; nine decimals at most), `count` "
                     "1 to 1000, `expires_at` ISO 8601 in the future (without a zone: UTC; absent or null: never "
                     "expires), `note` for admins only. A field the Vault does not know is refused (400).",
    "RedeemBody": "`code` as minted (`gvr-…`); blanks around it are ignored.",
}
STATE = typed(STR, enum=["unused", "redeemed", "expired"])
REFUSALS = {
    404: "No such code (the same for every caller).",
    409: "The code has been redeemed already, by anyone (the same for every caller).",
    410: "The code has expired (the same for every caller).",
}
QUERY = [
    {"name": "state", "in": "query", "required": False, "schema": STATE, "description": "Only codes in this state."},
    {"name": "batch", "in": "query", "required": False, "schema": typed(STR, maxLength=32),
     "description": "Only the codes minted together with this batch id."},
    {"name": "page", "in": "query", "required": False, "schema": typed(INT, minimum=1, default=1)},
    {"name": "per_page", "in": "query", "required": False, "schema": typed(INT, minimum=1, maximum=500, default=50)},
]


def code_schemas() -> dict[str, Schema]:
    """The request bodies (from the views' pydantic models) and the answers."""
    _, top = models_json_schema([(model, "validation") for model in (MintCodesBody, RedeemBody)],
                                ref_template="#/components/schemas/{model}")
    schemas = top["$defs"]
    for name, note in BODY_NOTES.items():
        schemas[name].setdefault("description", note)
    code = obj({
        "id": typed(INT), "prefix": typed(STR, description="The code's visible start."), "amount": usd(),
        "amount_nano_usd": typed(INT), "note": typed(STR), "batch": typed(STR), "state": STATE,
        "created_by": typed(INT, nullable=True), "created_at": moment(), "expires_at": moment(nullable=True),
        "redeemed_by": typed(INT, nullable=True), "redeemed_by_email": typed(STR, nullable=True),
        "redeemed_at": moment(nullable=True)}, description="A redemption code: never the code itself.")
    return schemas | {
        "RedemptionCode": code,
        "RedemptionCodePage": obj({"redemption_codes": array(ref("RedemptionCode")), "total": typed(INT),
                                   "page": typed(INT), "per_page": typed(INT)}),
        "MintedCodes": obj({
            "batch": typed(STR), "count": typed(INT), "amount": usd(), "amount_nano_usd": typed(INT),
            "expires_at": moment(nullable=True), "note": typed(STR),
            "codes": array(typed(STR), description="The codes, shown this once only: only their hashes are kept.")}),
        "Redemption": obj({
            "balance": usd(), "balance_nano_usd": typed(INT, description="The new balance in nano-USD (exact)."),
            "amount": usd(), "amount_nano_usd": typed(INT, description="What the code added."),
            "code": obj({"id": typed(INT), "prefix": typed(STR)})}),
    }


def code_paths() -> dict[str, Schema]:
    """`/admin/api/redemption-codes` and `/api/redeem`."""
    return {
        "/admin/api/redemption-codes": {
            "get": api("listRedemptionCodes", "Redemption codes with their state, newest first (never the codes)",
                       "admin", (200, reply("A page of codes.", ref("RedemptionCodePage"))), 400, 401, 403,
                       parameters=QUERY),
            "post": api("mintRedemptionCodes", "Mint a batch of redemption codes (shown this once)", "admin",
                        (201, reply("The batch with its codes.", ref("MintedCodes"))), 400, 401, 403, 413, 415,
                        requestBody=json_body(MintCodesBody), security=USER_WRITE),
        },
        "/api/redeem": {"post": redeem_operation()},
    }


def redeem_operation() -> Schema:
    """`POST /api/redeem`, with what each refusal of a code means."""
    operation = api(
        "redeemCode", "Redeem a top-up code for the caller", "accounts",
        (200, reply("Redeemed: the new balance.", ref("Redemption"))), 400, 401, 413, 415, 429,
        requestBody=json_body(RedeemBody), security=USER_WRITE,
        description="Each code pays out once, however many requests race for it, and lands in the ledger as a "
                    "balance adjustment of kind `redeem`. Every attempt counts against `VAULT_REDEEM_PER_HOUR` per "
                    "user (four times that per address); 429 beyond.")
    for status, meaning in REFUSALS.items():
        operation["responses"][str(status)] = reply(meaning, ref("Error"))
    operation["responses"] = dict(sorted(operation["responses"].items()))
    return operation
