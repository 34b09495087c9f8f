"""Prices: per-modality rates, tiers (the fallback's too), grounding fees, the version stamp that
makes an edit apply on every worker at once, the catalog and the model table."""

import json
import logging
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import select

from tests.fake_gemini import Reply
from vault import create_app, pool
from vault.billing import catalog, limits
from vault.billing.holds import HoldRequest
from vault.billing.money import usd_to_nano
from vault.billing.prices import (
    PRICE_VERSION,
    Price,
    PriceBook,
    PriceInput,
    Rates,
    bump_price_version,
    cost_nano,
    remove_price,
    upsert_price,
)
from vault.billing.usage import ArrayUsageTap, SseUsageTap, Usage, from_body, from_native, from_openai
from vault.clock import utcnow
from vault.config import ConfigError
from vault.extensions import db
from vault.models import GeminiModel, ModelPrice, UsageRecord
from vault.runtime import fallback_price, runtime

M = 1_000_000
FLASH = Rates(input=usd_to_nano("0.30"), output=usd_to_nano("2.50"), cached=usd_to_nano("0.03"),
              audio_input=usd_to_nano("1.00"), audio_cached=usd_to_nano("0.10"), grounding=usd_to_nano("0.035"))


# --- what a usage costs -------------------------------------------------------------------------


def test_audio_tokens_pay_the_audio_rate_cached_or_not():
    usage = Usage(prompt=1_000_000, cached=300_000, audio_prompt=400_000, audio_cached=100_000, candidates=10)
    assert usage.input_split() == (400_000, 300_000, 200_000, 100_000)
    expected = (400_000 * FLASH.input + 300_000 * FLASH.audio_input + 200_000 * FLASH.cached
                + 100_000 * FLASH.audio_cached + 10 * FLASH.output + M // 2) // M
    assert cost_nano(usage, FLASH) == expected == 120_000_000 + 300_000_000 + 6_000_000 + 10_000_000 + 25_000


def test_audio_prices_default_to_the_text_prices():
    rates = Rates(input=7, output=9, cached=3)
    assert (rates.audio_input, rates.audio_cached) == (7, 3)
    assert cost_nano(Usage(prompt=M, audio_prompt=M), rates) == cost_nano(Usage(prompt=M), rates) == 7


@pytest.mark.parametrize(("usage", "split"), [
    (Usage(prompt=10, audio_prompt=50), (0, 10, 0, 0)),  # more audio than prompt
    (Usage(prompt=10, cached=8, audio_prompt=5), (0, 2, 8, 0)),  # uncached audio beyond the uncached part
    (Usage(prompt=10, cached=4, audio_cached=9, tool_prompt=2), (8, 0, 4, 0)),  # cached audio without audio
])
def test_inconsistent_counts_are_clamped_to_the_prompt(usage, split):
    assert usage.input_split() == split
    assert sum(split) == usage.prompt + usage.tool_prompt


@pytest.mark.parametrize(("queries", "per_query", "fee"), [(0, False, 0), (1, False, 35), (3, False, 35),
                                                           (3, True, 3 * 35), (0, True, 0)])
def test_grounding_fee_per_prompt_or_per_query(queries, per_query, fee):
    rates = Rates(0, 0, 0, grounding=35, grounding_per_query=per_query)
    assert cost_nano(Usage(prompt=5, grounding_queries=queries), rates) == fee


def test_tiered_prices_keep_the_grounding_fee_and_charge_audio_at_the_higher_input():
    row = ModelPrice(model="m", input_nano=1000, output_nano=2000, cached_nano=100, tier_threshold=10,
                     input_above_nano=3000, output_above_nano=None, cached_above_nano=None, audio_input_nano=5000,
                     audio_cached_nano=None, grounding_fee_nano=77, grounding_unit="query")
    from vault.billing.prices import price_from_row
    price = price_from_row(row)
    assert price.rates_for(10) == Rates(1000, 2000, 100, 5000, 100, 77, True)
    assert price.rates_for(11) == Rates(3000, 2000, 100, 3000, 100, 77, True)


# --- reading usage ------------------------------------------------------------------------------


def test_native_usage_splits_audio_by_modality():
    meta = {"promptTokenCount": 120, "cachedContentTokenCount": 50, "candidatesTokenCount": 4,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 20}, {"modality": "AUDIO", "tokenCount": 100}],
            "cacheTokensDetails": [{"modality": "AUDIO", "tokenCount": 40}, {"modality": "TEXT", "tokenCount": 10}]}
    usage = from_native(meta)
    assert (usage.audio_prompt, usage.audio_cached) == (100, 40)
    assert usage.input_split() == (10, 60, 10, 40)


@pytest.mark.parametrize("details", [None, "AUDIO", [{"modality": "AUDIO", "tokenCount": "9"}], [7, None],
                                     [{"modality": "AUDIO", "tokenCount": -3}]])
def test_odd_modality_details_count_nothing(details):
    usage = from_native({"promptTokenCount": 9, "promptTokensDetails": details})
    assert usage.audio_prompt == 0


def test_openai_usage_has_no_modality_split_unless_it_says_audio_tokens():
    assert from_openai({"prompt_tokens": 10, "total_tokens": 10}).audio_prompt == 0
    assert from_openai({"prompt_tokens": 10, "prompt_tokens_details": {"audio_tokens": 4}}).audio_prompt == 4


SEARCH = {"webSearchQueries": ["who won", "who won 2026"], "searchEntryPoint": {"renderedContent": "<div/>"},
          "groundingChunks": [{"web": {"uri": "https://example.com", "title": "example.com"}}]}


def answer(grounding: dict | None = None, usage: dict | None = None) -> dict:
    candidate = {"content": {"parts": [{"text": "hi"}], "role": "model"}, "index": 0}
    if grounding is not None:
        candidate["groundingMetadata"] = grounding
    return {"candidates": [candidate], "usageMetadata": usage or {"promptTokenCount": 3, "candidatesTokenCount": 1}}


@pytest.mark.parametrize(("grounding", "queries"), [
    (SEARCH, 2),
    ({"searchEntryPoint": {"renderedContent": "<div/>"}}, 1),
    ({"groundingChunks": [{"web": {"uri": "https://example.com"}}]}, 1),
    ({"webSearchQueries": ["same", "same"]}, 1),
    ({"groundingChunks": [{"maps": {"uri": "https://maps.example"}}]}, 0),  # Maps grounding: not Search
    ({}, 0),
    (None, 0),
])
def test_a_whole_answer_is_grounded_by_google_search_only(grounding, queries):
    usage = from_body(json.dumps(answer(grounding)).encode())
    assert usage.grounding_queries == queries and usage.prompt == 3


def test_grounding_without_usage_still_counts():
    body = json.dumps({"candidates": [{"groundingMetadata": SEARCH}]}).encode()
    assert from_body(body).grounding_queries == 2


def sse(*payloads) -> bytes:
    return "".join(f"data: {json.dumps(p)}\r\n\r\n" for p in payloads).encode()


@pytest.mark.parametrize("split", [1, 13, 100_000])
def test_sse_tap_marks_the_stream_grounded_whichever_chunk_said_so(split):
    stream, tap = sse(answer(SEARCH), answer(None, {"promptTokenCount": 3, "candidatesTokenCount": 7})), SseUsageTap()
    for start in range(0, len(stream), split):
        tap.feed(stream[start:start + split])
    assert (tap.usage.candidates, tap.usage.grounding_queries) == (7, 2)


@pytest.mark.parametrize("split", [1, 7, 100_000])
def test_array_tap_reads_grounding_of_pretty_printed_elements(split):
    chunks = [answer(None), answer({"webSearchQueries": ["a"]}), answer(SEARCH, {"promptTokenCount": 3})]
    body = ("[" + ",\n".join(json.dumps(chunk, indent=2) for chunk in chunks) + "]").encode()
    tap = ArrayUsageTap()
    for start in range(0, len(body), split):
        tap.feed(body[start:start + split])
    assert (tap.usage.prompt, tap.usage.candidates, tap.usage.grounding_queries) == (3, 0, 2)


# --- the fallback price -------------------------------------------------------------------------


def test_fallback_is_tiered_like_pro_by_default_and_charges_grounding(tmp_path):
    from tests.conftest import app_config
    app = create_app(app_config(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'x.sqlite3'}"), environ={})
    price = fallback_price(app.config)
    assert price.rates_for(200_000).input == usd_to_nano("1.25")
    assert price.rates_for(200_001) == Rates(usd_to_nano("2.50"), usd_to_nano("15"), usd_to_nano("0.25"),
                                             grounding=35_000_000)
    assert price.base.grounding == 35_000_000


def test_fallback_tier_can_be_switched_off_and_set(tmp_path):
    from tests.conftest import app_config
    settings = {"VAULT_FALLBACK_TIER_THRESHOLD": "0", "VAULT_FALLBACK_GROUNDING_FEE": "0"}
    app = create_app(app_config(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'x.sqlite3'}"), environ=settings)
    price = fallback_price(app.config)
    assert price.above is None and price.rates_for(10**9) == price.base and price.base.grounding == 0
    settings = {"VAULT_FALLBACK_TIER_THRESHOLD": "1000", "VAULT_FALLBACK_INPUT_PRICE_ABOVE": "9"}
    app = create_app(app_config(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'x.sqlite3'}"), environ=settings)
    assert fallback_price(app.config).rates_for(1001).input == usd_to_nano("9")


@pytest.mark.parametrize("setting", [{"VAULT_FALLBACK_INPUT_PRICE_ABOVE": "-1"},
                                     {"VAULT_FALLBACK_TIER_THRESHOLD": "-5"},
                                     {"VAULT_DEFAULT_OUTPUT_TOKEN_LIMIT": "0"}])
def test_negative_fallbacks_and_empty_limits_are_refused(tmp_path, setting):
    from tests.conftest import app_config
    with pytest.raises(ConfigError, match=next(iter(setting))):
        create_app(app_config(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'x.sqlite3'}"), environ=setting)


# --- the version stamp --------------------------------------------------------------------------


@pytest.fixture
def versioned(app) -> None:
    """The version row in place (the test database is emptied between tests, row included)."""
    bump_price_version(db.session)
    db.session.commit()


def current_version() -> int:
    db.session.expire_all()
    return db.session.scalar(select(PRICE_VERSION))


def worker_book(fallback: Price | None = None) -> PriceBook:
    """A price book as another worker holds it: its own cache, never re-read by the clock."""
    return PriceBook(runtime().session_factory, fallback or runtime().prices.fallback, refresh_seconds=10**9)


def flash_prices(input_usd: str) -> PriceInput:
    return PriceInput(input=Decimal(input_usd), output=Decimal("2.50"))


def test_every_price_change_bumps_the_version_in_its_transaction(app, versioned):
    start = current_version()
    assert start is not None
    upsert_price(db.session, "gemini-x", flash_prices("1"))
    db.session.rollback()
    assert current_version() == start  # rolled back together with the change
    upsert_price(db.session, "gemini-x", flash_prices("1"))
    db.session.commit()
    assert current_version() == start + 1
    remove_price(db.session, db.session.get(ModelPrice, "gemini-x"))
    db.session.commit()
    assert current_version() == start + 2


def test_a_missing_version_row_is_recreated(app):
    db.session.execute(db.delete(db.metadata.tables["billing_versions"]))
    db.session.commit()
    assert current_version() is None
    bump_price_version(db.session)
    db.session.commit()
    assert current_version() == 1


def test_a_price_edit_reaches_every_worker_on_its_next_request(app, versioned):
    upsert_price(db.session, "gemini-x", flash_prices("1"))
    db.session.commit()
    first, second = worker_book(), worker_book()
    assert first.lookup("gemini-x", current_version()).base.input == second.lookup("gemini-x").base.input == 10**9
    upsert_price(db.session, "gemini-x", flash_prices("2"))  # as PUT /admin/api/prices does, in another worker
    db.session.commit()
    assert second.lookup("gemini-x").base.input == 10**9  # no stamp, no clock: the cache stands
    assert second.lookup("gemini-x", current_version()).base.input == 2 * 10**9
    assert first.lookup("gemini-x", current_version()).base.input == 2 * 10**9
    assert first.version == second.version == current_version()


def test_the_same_version_does_not_reload(app, versioned):
    book = worker_book()
    book.lookup("gemini-x", current_version())
    upsert_price(db.session, "gemini-x", flash_prices("3"))
    db.session.commit()
    stale = book.version
    assert book.lookup("gemini-x", stale).model == "fallback"  # the caller's stamp matches: nothing to do


def test_the_clock_still_refreshes_callers_without_a_stamp(app):
    now = [0.0]
    book = PriceBook(runtime().session_factory, runtime().prices.fallback, 30, clock=lambda: now[0])
    assert book.lookup("gemini-x").model == "fallback"
    upsert_price(db.session, "gemini-x", flash_prices("1"))
    db.session.commit()
    assert book.lookup("gemini-x").model == "fallback"
    now[0] = 30
    assert book.lookup("gemini-x").model == "gemini-x"


def test_every_hold_carries_the_version(app, versioned, make_user):
    user = make_user()

    def stamps_of_a_hold():
        now = utcnow()
        return runtime().books.holds.take(HoldRequest(user.id, uuid.uuid4().hex, 1000, None, endpoint="generateContent",
                                                      model="gemini-x", created_at=now, expires_at=now)).stamps

    assert stamps_of_a_hold().prices == current_version()
    upsert_price(db.session, "gemini-x", flash_prices("1"))
    db.session.commit()
    assert stamps_of_a_hold().prices == current_version()


# --- the catalog, the model table and the CLI ---------------------------------------------------


def test_seed_prices_adds_missing_models_and_force_overwrites(app, versioned):
    upsert_price(db.session, "gemini-2.5-flash", flash_prices("9"))
    db.session.commit()
    start = current_version()
    added = catalog.seed_prices(db.session)
    db.session.commit()
    assert "gemini-2.5-flash" not in added and len(added) == len(catalog.CATALOG) - 1
    assert db.session.get(ModelPrice, "gemini-2.5-flash").input_nano == 9 * 10**9
    assert current_version() == start + 1
    assert catalog.seed_prices(db.session) == []
    assert current_version() == start + 1
    catalog.seed_prices(db.session, force=True)
    db.session.commit()
    flash = db.session.get(ModelPrice, "gemini-2.5-flash")
    assert (flash.input_nano, flash.audio_input_nano, flash.audio_cached_nano) == (300_000_000, 10**9, 10**8)
    assert (flash.grounding_fee_nano, flash.grounding_unit) == (35_000_000, "prompt")
    gemini_3 = db.session.get(ModelPrice, "gemini-3-pro-preview")
    assert (gemini_3.grounding_fee_nano, gemini_3.grounding_unit, gemini_3.tier_threshold) == (14_000_000, "query",
                                                                                               200_000)


def test_catalog_entries_are_sound():
    names = [entry.model for entry in catalog.CATALOG]
    assert len(names) == len(set(names))
    for entry in catalog.CATALOG:
        prices = entry.price_input()
        assert prices.input >= 0 and prices.output >= 0 and entry.unit in ("prompt", "query")
        assert (entry.tier_threshold is None) == (entry.input_above is None)
        assert entry.input_token_limit > 0 and entry.output_token_limit > 0


def test_limits_come_from_the_model_table_or_the_defaults(app, versioned):
    book = worker_book()
    assert book.limits("gemini-2.0-flash-001") == book.default_limits == (1_048_576, 65_536)
    catalog.seed_models(db.session)
    db.session.commit()
    assert book.limits("models/gemini-2.0-flash-001", current_version()) == (1_048_576, 8_192)
    assert book.limits("gemini-embedding-001") == (2_048, 1)
    assert book.limits("no-such-model") == (1_048_576, 65_536)


def test_default_limits_are_settings(tmp_path):
    from tests.conftest import app_config
    settings = {"VAULT_DEFAULT_INPUT_TOKEN_LIMIT": "32768", "VAULT_DEFAULT_OUTPUT_TOKEN_LIMIT": "4096"}
    app = create_app(app_config(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'x.sqlite3'}"), environ=settings)
    with app.app_context():
        assert runtime().prices.default_limits == (32_768, 4_096)


def test_cli_seed_prices(runner):
    first = runner.invoke(args=["billing", "seed-prices"])
    assert first.exit_code == 0, first.output
    assert "gemini-2.5-pro" in first.output
    assert db.session.query(ModelPrice).count() == db.session.query(GeminiModel).count() == len(catalog.CATALOG)
    again = runner.invoke(args=["billing", "seed-prices"])
    assert "Prices added: none." in again.output
    assert "Prices written: gemini-3.5-flash" in runner.invoke(args=["billing", "seed-prices", "--force"]).output


@pytest.fixture
def pooled(app, fake_gemini):
    """The fake upstream with one of its keys in the pool."""
    runtime().upstream.base_url = fake_gemini.base_url
    pool.add_upstream_key(db.session, fake_gemini.new_key(), runtime().secret_box)
    db.session.commit()
    runtime().health.refresh(force=True)
    return fake_gemini


def test_cli_refresh_models_reads_every_page_with_one_key(runner, versioned, pooled, monkeypatch):
    monkeypatch.setattr(limits, "PAGE_SIZE", 2)
    catalog.seed_models(db.session)
    db.session.commit()
    pooled.catalog["gemini-9-test"] = {"name": "models/gemini-9-test", "inputTokenLimit": 4_000,
                                       "outputTokenLimit": 500}
    pooled.catalog["no-limits"] = {"name": "models/no-limits"}
    start = current_version()
    result = runner.invoke(args=["billing", "refresh-models"])
    assert result.exit_code == 0, result.output
    listed = [call for call in pooled.calls if call.endpoint == "listModels"]
    assert len(listed) == 4 and len({call.key for call in listed}) == 1  # 7 models, 2 a page
    assert [call.query.get("pageToken") is None for call in listed] == [True, False, False, False]
    db.session.expire_all()
    test_model = db.session.get(GeminiModel, "gemini-9-test")
    assert (test_model.input_token_limit, test_model.output_token_limit, test_model.source) == (4_000, 500, "upstream")
    assert db.session.get(GeminiModel, "no-limits") is None
    assert db.session.get(GeminiModel, "gemini-2.0-flash").output_token_limit == 65_536  # what the fake reports
    assert db.session.get(GeminiModel, "gemini-3.5-flash").source == "catalog"  # not listed upstream: kept
    assert current_version() == start + 1
    assert runtime().prices.limits("gemini-9-test", current_version()) == (4_000, 500)
    assert "limits changed for 2" in result.output


def test_a_failed_listing_changes_nothing(runner, pooled, db_snapshot):
    from tests.fake_gemini import faults
    pooled.enqueue(faults.unavailable(), endpoint="listModels", times=None)
    before = db_snapshot()
    result = runner.invoke(args=["billing", "refresh-models"])
    assert result.exit_code == 1 and "Listing models with key" in result.output
    assert db_snapshot()["gemini_models"] == before["gemini_models"]


def test_cli_refresh_models_without_a_key_fails_cleanly(runner):
    result = runner.invoke(args=["billing", "refresh-models"])
    assert result.exit_code == 1 and "No usable upstream key" in result.output


def test_bootstrap_fills_an_empty_table_and_leaves_a_filled_one(app):
    # Imported here: made at collection, its logger would be disabled by the migration tests'
    # logging file (alembic's env.py) before tests/test_bootstrap.py reads its warnings.
    from vault.bootstrap import bootstrap_catalog

    bootstrap_catalog()
    assert db.session.query(ModelPrice).count() == len(catalog.CATALOG)
    remove_price(db.session, db.session.get(ModelPrice, "gemini-2.0-flash"))
    db.session.commit()
    bootstrap_catalog()
    assert db.session.get(ModelPrice, "gemini-2.0-flash") is None  # an admin's removal stands


# --- the admin API and page ---------------------------------------------------------------------


@pytest.fixture
def admin_headers(make_user, auth_headers):
    return auth_headers(make_user(email="root@example.com", is_admin=True))


def test_api_takes_and_shows_audio_and_grounding(client, versioned, admin_headers):
    body = {"input": "0.30", "output": "2.50", "cached_input": "0.03", "audio_input": "1.00",
            "cached_audio_input": "0.10", "grounding_fee": "35", "grounding_unit": "prompt"}
    start = current_version()
    saved = client.put("/admin/api/prices/gemini-y", json=body, headers=admin_headers)
    assert saved.status_code == 200, saved.get_json()
    shown = client.get("/admin/api/prices/gemini-y", headers=admin_headers).get_json()
    assert (shown["audio_input"], shown["cached_audio_input"], shown["grounding_fee"]) == (1.0, 0.1, 35.0)
    assert shown["grounding_unit"] == "prompt"
    row = db.session.get(ModelPrice, "gemini-y")
    assert (row.audio_input_nano, row.grounding_fee_nano) == (10**9, 35_000_000)
    assert current_version() == start + 1
    listing = client.get("/admin/api/prices", headers=admin_headers).get_json()
    assert listing["fallback"]["tier_threshold"] == 200_000 and listing["fallback"]["grounding_fee"] == 35.0
    assert client.delete("/admin/api/prices/gemini-y", headers=admin_headers).status_code == 204
    assert current_version() == start + 2


@pytest.mark.parametrize("bad", [{"grounding_unit": "search"}, {"grounding_fee": "0.0000001"},
                                 {"audio_input": -1}, {"grounding_fee": "NaN"}])
def test_api_refuses_bad_new_fields_and_changes_nothing(client, admin_headers, db_snapshot, bad):
    before = db_snapshot()
    response = client.put("/admin/api/prices/gemini-y", json={"input": 1, "output": 2} | bad, headers=admin_headers)
    assert response.status_code == 400
    assert db_snapshot() == before


def test_api_lists_the_model_table(client, admin_headers, make_user, auth_headers):
    catalog.seed_models(db.session)
    db.session.commit()
    listing = client.get("/admin/api/models", headers=admin_headers).get_json()
    flash = next(m for m in listing["models"] if m["model"] == "gemini-2.0-flash")
    assert {"input_token_limit": 1_048_576, "output_token_limit": 8_192, "source": "catalog"}.items() <= flash.items()
    assert listing["default"] == {"input_token_limit": 1_048_576, "output_token_limit": 65_536}
    user = auth_headers(make_user(email="ada@example.com"))
    assert client.get("/admin/api/models", headers=user).status_code == 403


def test_prices_page_takes_the_new_fields_and_shows_the_models(app, versioned, make_user):
    from tests.test_pages import csrf_token, log_in
    make_user(email="root@example.com", is_admin=True)
    catalog.seed_models(db.session)
    db.session.commit()
    browser = app.test_client()
    log_in(browser, "root@example.com")
    token = csrf_token(browser, "/admin/prices")
    start = current_version()
    refused = browser.post("/admin/prices", data={"model": "gemini-z", "input": "1", "output": "2",
                                                  "grounding_fee": "0.0000001", "csrf_token": token})
    assert refused.status_code == 400 and b"At most six decimals" in refused.data
    browser.post("/admin/prices", data={"model": "gemini-z", "input": "1", "output": "2", "audio_input": "3",
                                        "grounding_fee": "14", "grounding_unit": "query", "csrf_token": token})
    row = db.session.get(ModelPrice, "gemini-z")
    assert (row.audio_input_nano, row.grounding_fee_nano, row.grounding_unit) == (3 * 10**9, 14_000_000, "query")
    assert current_version() == start + 1
    page = browser.get("/admin/prices").get_data(as_text=True)
    assert "$14 / 1,000 queries" in page and 'data-testid="models-table"' in page and "8,192" in page
    nan = browser.post("/admin/prices", data={"model": "gemini-z", "input": "NaN", "output": "2", "csrf_token": token})
    assert nan.status_code == 400


# --- through the proxy --------------------------------------------------------------------------


def test_audio_and_grounding_are_billed_through_the_proxy(client, pooled, make_user, make_api_key):
    upsert_price(db.session, "gemini-2.5-flash", catalog.CATALOG[5].price_input())
    db.session.commit()
    key = make_api_key(make_user(balance="10.00")).plaintext
    pooled.enqueue(Reply(text="one two three", audio_tokens=1000, search_queries=["q1", "q2"]))
    body = {"contents": [{"role": "user", "parts": [{"text": "listen to this"}]}]}
    response = client.post("/v1beta/models/gemini-2.5-flash:generateContent", json=body,
                           headers={"x-goog-api-key": key})
    assert response.status_code == 200
    response.close()
    record = db.session.scalars(select(UsageRecord)).one()
    # 3 text + 1000 audio tokens in, 3 out, one grounded prompt.
    expected = (3 * 300_000_000 + 1000 * 10**9 + 3 * 2_500_000_000 + M // 2) // M + 35_000_000
    assert record.cost_nano == expected


def test_a_streamed_grounded_answer_pays_the_fee(client, pooled, make_user, make_api_key):
    upsert_price(db.session, "gemini-2.5-flash", catalog.CATALOG[5].price_input())
    db.session.commit()
    key = make_api_key(make_user(balance="10.00")).plaintext
    body = {"contents": [{"role": "user", "parts": [{"text": "search"}]}]}
    for path in ("streamGenerateContent?alt=sse", "streamGenerateContent"):
        pooled.enqueue(Reply(text="a b c d", chunks=2, search_queries=["q"]))
        response = client.post(f"/v1beta/models/gemini-2.5-flash:{path}", json=body, headers={"x-goog-api-key": key})
        assert response.status_code == 200 and b"groundingMetadata" in response.get_data()
        response.close()
    records = db.session.scalars(select(UsageRecord)).all()
    assert len(records) == 2
    assert {record.cost_nano for record in records} == {(1 * 300_000_000 + 4 * 2_500_000_000 + M // 2) // M
                                                         + 35_000_000}


# --- the migration ------------------------------------------------------------------------------


@pytest.fixture
def alembic_logging():
    """Alembic's env.py applies its logging file, which disables every logger made before; undo that."""
    loggers = [item for item in logging.root.manager.loggerDict.values() if isinstance(item, logging.Logger)]
    disabled = {item: item.disabled for item in loggers}
    root = logging.root.level, list(logging.root.handlers)
    yield
    for item, was in disabled.items():
        item.disabled = was
    logging.root.setLevel(root[0])
    logging.root.handlers = root[1]


def test_migration_fills_untouched_seeded_rows_and_stamps_the_version(fresh_database_url, tmp_path, alembic_logging):
    from flask_migrate import upgrade

    from tests.conftest import app_config
    app = create_app(app_config(tmp_path, DATABASE_URL=fresh_database_url), environ={})
    with app.app_context():
        upgrade(revision="0005_invites")
        db.session.execute(db.text("UPDATE model_prices SET input_nano = 1 WHERE model = 'gemini-2.0-flash'"))
        db.session.commit()
        upgrade(revision="0006_prices")
        assert db.session.scalar(select(PRICE_VERSION)) == 1
        columns = select(*(ModelPrice.__table__.c[name] for name in (
            "input_nano", "audio_input_nano", "audio_cached_nano", "grounding_fee_nano", "grounding_unit")))
        row = lambda model: db.session.execute(columns.where(ModelPrice.model == model)).one()  # noqa: E731
        flash = row("gemini-2.5-flash")  # columns of this revision only: later ones add more
        assert (flash.audio_input_nano, flash.audio_cached_nano, flash.grounding_fee_nano) == (10**9, 10**8, 35_000_000)
        changed = row("gemini-2.0-flash")  # an admin's price: left as it was
        assert (changed.input_nano, changed.audio_input_nano, changed.grounding_fee_nano) == (1, None, None)
        assert row("gemini-3-pro-preview").grounding_unit == "query"
        limits_by_model = {row.model: (row.input_token_limit, row.output_token_limit)
                           for row in db.session.scalars(select(GeminiModel))}
        assert limits_by_model == {entry.model: (entry.input_token_limit, entry.output_token_limit)
                                   for entry in catalog.CATALOG if entry.image is None}  # Imagen came later
        db.session.remove()
        db.engine.dispose()
