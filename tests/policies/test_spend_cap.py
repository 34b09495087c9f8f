"""ways a key spends past the spend cap its policy (or its owner's ceiling) sets."""

from decimal import Decimal
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import select

from tests.billing.books import assert_books_balance, records
from tests.fake_gemini import Reply
from tests.policies.test_enforcement import GENERATE, PROMPT, closed, set_limits, set_policy
from vault.billing.prices import PriceInput, upsert_price
from vault.extensions import db
from vault.models import KeySpend

CAP = 50_000_000  # $0.05
# Two zones 26 hours apart: the same instant is on different calendar days in them, so
# switching the cap's time zone between two calls stands in for midnight passing.
EARLY, LATE = ZoneInfo("Pacific/Kiritimati"), ZoneInfo("Etc/GMT+12")


def flash_at_list_price(**fields) -> None:
    upsert_price(db.session, "gemini-2.5-flash", PriceInput(input=Decimal("0.30"), output=Decimal("2.50"), **fields))
    db.session.commit()


def generate(client, key, body=PROMPT):
    return closed(client.post(GENERATE, json=body, headers={"x-goog-api-key": key.plaintext}))


def test_an_owners_lifetime_cap_still_binds_a_key_whose_own_cap_is_per_day(client, key, fake_gemini):
    """rules.effective_policy: a key with its own cap takes min(key cap, owner cap) but keeps the
    KEY's period. The owner's "$0.05 per key, over its whole life" ceiling set after the key
    had "$0.05 per day" becomes "$0.05 per day": every new day the key spends $0.05 more."""
    flash_at_list_price()
    current_app.config["VAULT_SPEND_CAP_TIMEZONE"] = EARLY
    set_policy(key, spend_cap_nano=CAP, spend_cap_period="day")  # the owner's own choice, no ceiling yet
    set_limits(key, spend_cap_nano=CAP)  # then the admin: at most $0.05 over each key's life
    fake_gemini.enqueue(Reply(text="hi", thoughts_tokens=19_000))  # ~ $0.0475 at $2.50 per 1M output
    first = generate(client, key)
    assert first.status_code == 200, first.get_data(as_text=True)
    assert int(first.headers["X-Vault-Output-Cap"]) > 19_000  # the thoughts fit in the lowered output cap
    spent = sum(record.cost_nano for record in records())
    assert CAP - 2_600_000 < spent <= CAP  # what is left cannot pay for the smallest output any more
    assert generate(client, key).status_code == 402  # same day: refused, as it should be

    current_app.config["VAULT_SPEND_CAP_TIMEZONE"] = LATE  # the next day
    again = generate(client, key)
    total = sum(record.cost_nano for record in records())
    periods = [(row.period, row.spent_nano) for row in db.session.scalars(select(KeySpend))]
    assert again.status_code == 402, (
        f"the owner's lifetime ceiling of {CAP} nano-USD is spent ({spent}), yet a new day admitted the key "
        f"again (total now {total}, key_spend {periods})")
    assert again.headers["X-Vault-Policy"] == "spend_cap"
    assert_books_balance(key.record.user_id)


def test_per_query_search_fees_past_the_hold_are_charged_exactly_and_end_the_cap(client, key, fake_gemini):
    """A per-query grounding price: the hold covers one search fee, and Google does not say
    beforehand how many queries a model will run. The call is charged what it used (money is
    exact, README "Policies"): the key may pass its cap by those fees on this one call, and is
    refused from then on."""
    flash_at_list_price(grounding_fee=Decimal("14"), grounding_unit="query")  # $14 per 1,000 queries
    cap = 20_000_000  # $0.02 over the key's life: one $0.014 search fee and some output
    set_policy(key, spend_cap_nano=cap, spend_cap_period=None)
    fake_gemini.enqueue(Reply(text="hi", search_queries=["one", "two", "three", "four"]))
    response = generate(client, key, PROMPT | {"tools": [{"google_search": {}}]})
    assert response.status_code == 200
    (record,) = records()
    (spent,) = db.session.scalars(select(KeySpend)).all()
    assert record.hold_nano <= cap < record.cost_nano == spent.spent_nano
    assert record.cost_nano >= 4 * 14_000_000  # every query Google ran
    refused = generate(client, key)
    assert refused.status_code == 402 and refused.headers["X-Vault-Policy"] == "spend_cap"
    assert len(fake_gemini.calls) == 1
    assert_books_balance(key.record.user_id)
