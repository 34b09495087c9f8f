"""The overdraft bound in the ledger and the meter: holds cover the worst case, or lower the cap to what
the balance covers, and take a balance at most `overdraft` below zero — on SQLite and PostgreSQL."""

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from flask import current_app

from tests.billing.books import assert_books_balance, balance_of, open_holds, take_hold
from vault.billing import ledger
from vault.billing.meter import HoldPolicy, Meter
from vault.billing.money import usd_to_nano
from vault.billing.usage import Evidence, Usage
from vault.config import ConfigError, finalize, settings_from_env
from vault.errors import PaymentRequired
from vault.runtime import runtime

OVERDRAFT = usd_to_nano("0.01")
UNCAPPED = {"contents": [{"role": "user", "parts": [{"text": "write a long story"}]}]}


def hold_with_overdraft(user_id: int, amount: int, minimum: int | None = None, overdraft: int = 2000) -> int:
    with runtime().session_factory() as session:
        return ledger.reserve(session, user_id, uuid.uuid4().hex, amount, minimum,
                              endpoint="generateContent", model="m", overdraft=overdraft,
                              expires_at=datetime.now(UTC) + timedelta(hours=1))


def test_a_hold_may_take_a_positive_balance_below_zero_by_the_overdraft(account):
    user_id = account("0.000005")  # 5,000 nano-USD
    assert hold_with_overdraft(user_id, 6000) == 6000  # covered with the overdraft: taken whole
    assert balance_of(user_id) == -1000
    with pytest.raises(PaymentRequired):
        hold_with_overdraft(user_id, 1)  # not positive any more: spent
    other = account("0.000005")
    with pytest.raises(PaymentRequired):
        hold_with_overdraft(other, 10_000, minimum=7001)
    assert hold_with_overdraft(other, 10_000, minimum=7000) == 7000  # the rest, down to −overdraft
    assert balance_of(other) == -2000
    assert take_hold(account("0.000005"), 9000)[1] == 5000  # no overdraft: never below zero
    assert_books_balance()


def meter(user_id: int, policy: HoldPolicy, model: str = "gemini-unknown-pro") -> Meter:
    vault = runtime()
    metered = Meter(vault.books, vault.prices, policy, user_id, None, "streamGenerateContent")
    metered.describe(model, True, True)
    return metered


def test_an_uncapped_request_gets_the_cap_the_balance_covers(account):
    policy = HoldPolicy(0, min_output_tokens=1024, overdraft_nano=OVERDRAFT)
    rich, poor = account("10.00"), account("0.05")
    full = meter(rich, policy)
    full.reserve(100, UNCAPPED)
    assert full.output_cap == 65_536 and full.lowered_cap is None  # the fallback price, the default limits
    assert full.hold == full.cost(Usage(prompt=100, candidates=65_536))
    lowered = meter(poor, policy)
    lowered.reserve(100, UNCAPPED)
    assert lowered.hold == usd_to_nano("0.06") and balance_of(poor) == -OVERDRAFT
    assert lowered.lowered_cap == lowered.output_cap == 5987  # (0.06 USD − 100 input tokens) / 10 USD per 1M
    assert lowered.cost(Usage(prompt=100, candidates=5987)) <= lowered.hold < lowered.cost(Usage(prompt=100,
                                                                                                 candidates=5988))
    lowered.finish(200, Evidence(Usage(prompt=10, candidates=5987), 0, 0))
    assert balance_of(poor) >= -OVERDRAFT
    assert_books_balance()


def test_below_the_minimum_cap_is_402_and_changes_nothing(account):
    policy = HoldPolicy(0, min_output_tokens=1024, overdraft_nano=0)
    user_id = account("0.010")  # 1,000 output tokens at 10 USD per 1M: below the minimum cap
    with pytest.raises(PaymentRequired):
        meter(user_id, policy).reserve(100, UNCAPPED)
    assert balance_of(user_id) == usd_to_nano("0.010") and open_holds(user_id) == []
    small = meter(user_id, policy)
    small.reserve(100, UNCAPPED | {"generationConfig": {"maxOutputTokens": 200}})  # its own cap is below
    assert small.output_cap == 200 and small.lowered_cap is None


@pytest.mark.parametrize("overdraft", ["0", "0.01"])
def test_concurrent_uncapped_requests_never_take_a_balance_below_the_bound(account, overdraft):
    policy = HoldPolicy(usd_to_nano("0.0001"), min_output_tokens=256, overdraft_nano=usd_to_nano(overdraft))
    user_id = account("0.20")
    meters, refused, lock = [], [], threading.Lock()

    def request(app):
        with app.app_context():
            metered = meter(user_id, policy)
            try:
                metered.reserve(100, UNCAPPED)
            except PaymentRequired:
                with lock:
                    refused.append(metered)
                return
            with lock:
                meters.append(metered)

    app = current_app._get_current_object()
    threads = [threading.Thread(target=request, args=(app,)) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(meters) + len(refused) == 20 and meters
    assert balance_of(user_id) >= -usd_to_nano(overdraft)
    for metered in meters:  # the worst each may cost is within its hold
        assert metered.cost(Usage(prompt=100, candidates=metered.output_cap)) <= metered.hold
        metered.finish(200, Evidence(Usage(prompt=100, candidates=metered.output_cap), 0, 0))
    assert balance_of(user_id) >= -usd_to_nano(overdraft)
    assert_books_balance()


def test_the_settings_default_to_a_cent_and_1024_tokens_and_refuse_nonsense(tmp_path):
    defaults = settings_from_env({})
    assert (defaults["VAULT_OVERDRAFT_LIMIT"], defaults["VAULT_MIN_OUTPUT_TOKENS"]) == (OVERDRAFT, 1024)
    assert "VAULT_HOLD_OUTPUT_TOKENS" not in defaults  # the model table replaced it
    for environ in ({"VAULT_OVERDRAFT_LIMIT": "-0.01"}, {"VAULT_MIN_OUTPUT_TOKENS": "0"},
                    {"VAULT_OVERDRAFT_LIMIT": "lots"}):
        with pytest.raises(ConfigError):
            finalize(settings_from_env(environ), str(tmp_path))
