"""The effective policy: a key's own settings tightened by its owner's limits; cap periods."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from vault.policies.rules import effective_policy, period_ends, period_of

BERLIN = ZoneInfo("Europe/Berlin")


def test_a_key_without_settings_takes_its_owners_limits_as_defaults():
    limits = {"spend_cap_nano": 5, "spend_cap_period": "day", "rate_limit_rpm": 60, "rate_limit_tpm": 1000,
              "max_concurrency": 2}
    policy = effective_policy({}, limits)
    assert (policy.spend_cap_nano, policy.spend_cap_period, policy.rate_limit_rpm, policy.rate_limit_tpm,
            policy.max_concurrency) == (5, "day", 60, 1000, 2)
    assert policy.in_hold


def test_the_tighter_of_key_and_owner_wins_and_a_lowered_ceiling_lowers_the_key():
    key = {"spend_cap_nano": 10, "spend_cap_period": None, "rate_limit_rpm": 100, "rate_limit_tpm": 50,
           "max_concurrency": 9}
    policy = effective_policy(key, {"spend_cap_nano": 4, "spend_cap_period": None, "rate_limit_rpm": 30,
                                    "rate_limit_tpm": 500, "max_concurrency": 3})
    assert (policy.spend_cap_nano, policy.rate_limit_rpm, policy.rate_limit_tpm, policy.max_concurrency) == (
        4, 30, 50, 3)


@pytest.mark.parametrize(("own", "ceiling", "expected"), [
    (None, None, None), (0, None, 0), (0, 20, 20), (10, 0, 10), (None, 0, 0), (50, 20, 20)])
def test_requests_per_minute_zero_means_no_limit(own, ceiling, expected):
    limits = {} if ceiling is None else {"rate_limit_rpm": ceiling}
    assert effective_policy({"rate_limit_rpm": own}, limits).rate_limit_rpm == expected


def test_a_key_with_no_limits_needs_no_quota_hold():
    assert not effective_policy({"rate_limit_rpm": 5, "allowed_models": ["x*"]}, None).in_hold


def test_models_must_pass_the_keys_list_and_the_owners_lists():
    policy = effective_policy({"allowed_models": ["gemini-2.5-*"]},
                              {"allowed_models": ["gemini-2.5-flash*"], "visible_models": ["*-lite"]})
    assert policy.allows_model(("gemini-2.5-flash-lite",)) is None
    assert policy.allows_model(("gemini-2.5-pro",)).policy == "allowed_models"
    assert policy.allows_model(("gemini-2.5-flash",)).policy == "visible_models"
    # an alias passes when either the name called or its target passes each list
    assert policy.allows_model(("fast", "gemini-2.5-flash-lite")) is None


@pytest.mark.parametrize(("glob", "model", "allowed"), [
    ("gemini-2.5-flash*", "gemini-2.5-flash", True), ("gemini-2.5-flash*", "gemini-2.5-flash-lite", True),
    ("gemini-2.5-flash*", "gemini-2.5-pro", False), ("gemini-2.5-flash*", "GEMINI-2.5-FLASH", False),
    ("gemini-?.5-pro", "gemini-2.5-pro", True), ("*", "anything", True), ("gemini-2.5-flash", "gemini-2.5-flash-x",
                                                                            False)])
def test_model_globs_match_whole_case_sensitive_names(glob, model, allowed):
    assert (effective_policy({"allowed_models": [glob]}, None).allows_model((model,)) is None) is allowed


@pytest.mark.parametrize(("address", "allowed"), [
    ("10.1.2.3", True), ("10.255.0.1", True), ("11.0.0.1", False), ("::ffff:10.0.0.9", True),
    ("2001:db8::1", True), ("2001:db9::1", False), ("", False), ("not an address", False)])
def test_client_addresses_must_fall_in_every_cidr_list(address, allowed):
    policy = effective_policy({"allowed_ips": ["10.0.0.0/8", "2001:db8::/32"]}, None)
    assert policy.allows_address(address) is allowed


def test_key_and_owner_cidr_lists_both_apply():
    policy = effective_policy({"allowed_ips": ["10.0.0.0/8"]}, {"allowed_ips": ["10.1.0.0/16"]})
    assert policy.allows_address("10.1.0.1") and not policy.allows_address("10.2.0.1")


MOMENT = datetime(2026, 11, 29, 23, 30, tzinfo=UTC)  # a Sunday; already Monday in Berlin


@pytest.mark.parametrize(("period", "zone", "expected"), [
    ("day", ZoneInfo("UTC"), "day:2026-11-29"), ("day", BERLIN, "day:2026-11-30"),
    ("week", ZoneInfo("UTC"), "week:2026-W48"), ("week", BERLIN, "week:2026-W49"),
    ("month", ZoneInfo("UTC"), "month:2026-11"), (None, BERLIN, "life")])
def test_cap_periods_are_named_in_the_stated_zone(period, zone, expected):
    assert period_of(period, MOMENT, zone) == expected


def test_periods_end_at_local_midnight_monday_and_the_first():
    assert period_ends("day", MOMENT, BERLIN) == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    assert period_ends("week", MOMENT, ZoneInfo("UTC")) == datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
    assert period_ends("month", datetime(2026, 12, 31, 12, tzinfo=UTC), BERLIN) == datetime(2026, 12, 31, 23,
                                                                                               tzinfo=UTC)
    assert period_ends(None, MOMENT, BERLIN) is None


def test_a_day_across_a_daylight_saving_change_ends_at_local_midnight():
    spring = datetime(2026, 3, 29, 10, tzinfo=UTC)  # Berlin moves to CEST at 02:00 that day
    assert period_ends("day", spring, BERLIN) == datetime(2026, 3, 29, 22, 0, tzinfo=UTC)
