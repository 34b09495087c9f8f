"""Reading upstream answers: what each status and Google error body means for a key."""

from datetime import UTC, datetime

import pytest

from tests.fake_gemini import faults
from vault.upstream.classify import Verdict, classify_response, next_daily_reset, parse_duration

NOW = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)


def classify(status, body, path="/v1beta/models/m:generateContent", retry_after=None):
    return classify_response(status, body, path, retry_after, NOW)


@pytest.mark.parametrize(("fault", "verdict"), [
    (faults.quota_exceeded("37s"), Verdict.RATE_LIMITED),
    (faults.resource_exhausted(), Verdict.RATE_LIMITED),
    (faults.key_invalid(), Verdict.KEY_REJECTED),
    (faults.key_leaked(), Verdict.KEY_REJECTED),
    (faults.key_service_blocked(), Verdict.KEY_REJECTED),
    (faults.service_disabled(), Verdict.KEY_REJECTED),
    (faults.unregistered_caller(), Verdict.TRANSIENT),
    (faults.location_not_supported(), Verdict.KEY_FAILURE),
    (faults.invalid_argument("Request contains an invalid argument."), Verdict.CLIENT_ERROR),
    (faults.not_found("models/gemini-foo"), Verdict.CLIENT_ERROR),
    (faults.internal(), Verdict.TRANSIENT),
    (faults.unavailable(), Verdict.TRANSIENT),
    (faults.deadline_exceeded(), Verdict.TRANSIENT),
    (faults.bad_gateway_html(), Verdict.TRANSIENT),
])
@pytest.mark.parametrize("wrapped", [False, True], ids=["native", "openai-array"])
def test_verdicts(fault, verdict, wrapped):
    assert classify(fault.status, fault.body("openai" if wrapped else "native")).verdict is verdict


def test_retry_delay_and_daily_quota():
    minute = faults.quota_exceeded("1.5s")
    day = faults.quota_exceeded("10s", window="day")
    assert classify(429, minute.body()).retry_after == 1.5
    assert classify(429, day.body()).daily_quota is True
    assert classify(429, minute.body()).daily_quota is False


def test_retry_after_header_when_the_body_has_no_hint():
    assert classify(429, b"{}", retry_after="12").retry_after == 12
    assert classify(429, b"{}", retry_after="Wed, 25 Nov 2026 20:00:30 GMT").retry_after == 30
    assert classify(429, b"{}").retry_after is None


def test_403_on_someone_elses_file_is_not_the_keys_fault():
    assert classify(403, faults.key_leaked().body(), path="/v1beta/files/abc").verdict is Verdict.CLIENT_ERROR


def test_summaries_never_carry_the_message_text():
    summary = classify(400, faults.key_invalid().body()).summary
    assert summary == "400 API_KEY_INVALID"


@pytest.mark.parametrize(("raw", "seconds"), [("37s", 37), ("38.804097346s", 38.804097346), ("soon", None), (5, None)])
def test_parse_duration(raw, seconds):
    assert parse_duration(raw) == seconds


def test_daily_reset_is_pacific_midnight():
    reset = next_daily_reset(NOW)
    assert reset.utcoffset().total_seconds() in (-8 * 3600, -7 * 3600)
    assert (reset.hour, reset.minute) == (0, 0) and reset > NOW
