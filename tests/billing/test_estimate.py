"""Estimates and worst cases of requests, hold plans and output caps, and charging without usage."""

import base64
import json

import pytest

from vault.billing import estimate
from vault.billing.estimate import HoldPlan, RequestEstimate, plan_hold, read_request
from vault.billing.meter import HoldPolicy, Meter
from vault.billing.money import usd_to_nano
from vault.billing.prices import Price, Rates, cost_nano
from vault.billing.usage import ArrayUsageTap, Evidence, SseUsageTap, Usage, evidence_of_body

PRO = Price("gemini-2.5-pro", Rates(usd_to_nano("1.25"), usd_to_nano("10"), usd_to_nano("0.125"), grounding=35_000_000),
            tier_threshold=200_000, above=Rates(usd_to_nano("2.50"), usd_to_nano("15"), usd_to_nano("0.25")))
LIMITS = (1_048_576, 65_536)


def b64(size: int) -> str:
    return base64.b64encode(b"\0" * size).decode()


def native(*parts, **fields) -> dict:
    return {"contents": [{"role": "user", "parts": list(parts)}], **fields}


def read(endpoint: str, payload: dict) -> RequestEstimate:
    return read_request(endpoint, payload, len(json.dumps(payload).encode()))


def test_text_is_four_characters_a_token_and_one_token_a_byte_at_worst():
    payload = native({"text": "x" * 10}, {"text": "é" * 3}, systemInstruction={"parts": [{"text": "be"}]})
    found = read("generateContent", payload)
    assert found.input_tokens == 4  # 15 characters
    assert found.worst_input_tokens == len(json.dumps(payload).encode())
    assert found.generates and found.output_cap is None and found.candidates == 1 and not found.whole_window


@pytest.mark.parametrize(("part", "estimated", "extra_worst"), [
    ({"inlineData": {"mimeType": "image/png", "data": b64(300)}}, 258, 1120 - 400),
    ({"inline_data": {"mime_type": "image/jpeg", "data": b64(3000)}}, 258, 0),
    ({"inlineData": {"mimeType": "audio/mp3", "data": b64(100_000)}}, 200, 0),
    ({"inlineData": {"mimeType": "video/mp4", "data": b64(100_000)}}, 200, 3 * len(b64(100_000))),
    ({"inlineData": {"mimeType": "application/pdf", "data": b64(999)}}, 2, 3 * len(b64(999))),
    ({"inlineData": {"mimeType": "text/plain", "data": b64(400)}}, 100, 0),
])
def test_inline_media_by_kind_and_size(part, estimated, extra_worst):
    payload = native(part)
    found = read("streamGenerateContent", payload)
    assert found.input_tokens == estimated
    assert found.worst_input_tokens == len(json.dumps(payload).encode()) + extra_worst


@pytest.mark.parametrize("payload", [
    native({"fileData": {"mimeType": "image/png", "fileUri": "https://generativelanguage.googleapis.com/files/a"}}),
    native({"text": "hi"}, cachedContent="cachedContents/abc"),
    {"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]},
    {"model": "m", "messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "f-1"}}]}]},
    {"model": "m", "messages": [{"role": "user", "content": "hi"}], "extra_body": {"google": {"cached_content": "c"}}},
])
def test_input_outside_the_body_counts_the_whole_window_at_worst(payload):
    endpoint = "chat.completions" if "messages" in payload else "generateContent"
    found = read(endpoint, payload)
    assert found.whole_window and found.worst_input(LIMITS[0]) == LIMITS[0]


def test_openai_chat_content_parts_caps_and_n():
    image = "data:image/png;base64," + b64(3000)
    payload = {"model": "m", "n": 3, "max_tokens": 50, "max_completion_tokens": 40, "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "what is this?"}, {"type": "image_url",
                                                                               "image_url": {"url": image}},
                                     {"type": "input_audio", "input_audio": {"data": b64(5000), "format": "wav"}}]}]}
    found = read("chat.completions", payload)
    assert found.input_tokens == estimate.tokens_of_chars(8 + 13) + 258 + 10
    assert (found.output_cap, found.candidates, found.whole_window) == (40, 3, False)


def test_native_cap_candidates_and_search():
    payload = native({"text": "hi"}, generationConfig={"maxOutputTokens": 77, "candidateCount": 2},
                     tools=[{"googleSearch": {}}])
    found = read("generateContent", payload)
    assert (found.output_cap, found.candidates, found.searched) == (77, 2, True)
    snake = read("generateContent", native({"text": "hi"}, generation_config={"max_output_tokens": 5,
                                                                               "candidate_count": True}))
    assert (snake.output_cap, snake.candidates) == (5, 1)  # a boolean is no count


def test_embeddings_have_no_output_and_a_window_per_input():
    batch = {"requests": [{"model": "models/e", "content": {"parts": [{"text": "x" * 8}]}} for _ in range(3)]}
    found = read("batchEmbedContents", batch)
    assert (found.input_tokens, found.inputs, found.generates, found.output_cap) == (6, 3, False, None)
    assert found.worst_input(2) == 6  # three inputs of at most 2 tokens each
    assert read("embeddings", {"model": "e", "input": ["abcd", "efgh"]}).inputs == 2
    tokens = read("embeddings", {"model": "e", "input": [[1, 2, 3], [4]]})
    assert (tokens.input_tokens, tokens.inputs) == (4, 2)
    assert read("embeddings", {"model": "e", "input": [1, 2, 3]}).input_tokens == 3
    assert read("embedContent", {"content": {"parts": [{"text": "abcdefgh"}]}}).input_tokens == 2


@pytest.mark.parametrize("payload", [None, [], {"contents": "nope"}, {"contents": [None, {"parts": [1, None]}]},
                                     {"messages": [{"content": [None, {"image_url": 5}]}]}, {"input": {"a": 1}}])
@pytest.mark.parametrize("endpoint", ["generateContent", "chat.completions", "embeddings", "batchEmbedContents"])
def test_odd_bodies_never_raise(endpoint, payload):
    assert read_request(endpoint, payload, 10).worst_input_tokens >= 10


def plan_for(payload: dict, price: Price = PRO, min_output: int = 1024, floor: int = 0) -> HoldPlan:
    return plan_hold(read("generateContent", payload), price, LIMITS, min_output, floor)


def test_the_hold_covers_the_worst_case_and_the_minimum_the_minimum_cap():
    payload = native({"text": "hello"})
    plan = plan_for(payload)
    size = len(json.dumps(payload).encode())
    assert plan.allowed_cap == 65_536 and plan.worst_input == size
    assert plan.amount == cost_nano(Usage(prompt=size, candidates=65_536), PRO.base)
    assert plan.minimum == cost_nano(Usage(prompt=size, candidates=1024), PRO.base)
    assert plan.estimate_nano == cost_nano(Usage(prompt=2), PRO.base)
    capped = plan_for(native({"text": "hello"}, generationConfig={"maxOutputTokens": 100, "candidateCount": 3}))
    assert capped.allowed_cap == 100 and capped.minimum == capped.amount  # its own cap is below the minimum cap
    assert capped.amount == cost_nano(Usage(prompt=capped.worst_input, candidates=300), PRO.base)
    huge = plan_for(native({"text": "hello"}, generationConfig={"maxOutputTokens": 10**9}))
    assert huge.allowed_cap == 65_536
    assert plan_for(payload, floor=10**12).amount == 10**12


def test_worst_input_takes_the_higher_tier_audio_rate_and_grounding_fee():
    referenced = plan_for(native({"fileData": {"fileUri": "files/x"}}))
    assert referenced.worst_input == LIMITS[0] and referenced.rates == PRO.above
    flash = Price("flash", Rates(300, 2500, 30, audio_input=1000, grounding=7))
    plan = plan_for(native({"text": "hi"}, tools=[{"google_search": {}}]), price=flash)
    assert plan.amount == (plan.worst_input * 1000 + 65_536 * 2500 + 500_000) // 10**6 + 7
    assert plan.cost(65_536) == plan.amount


@pytest.mark.parametrize("candidates", [1, 3])
@pytest.mark.parametrize("held", [0, 1, 999, 10**6, 12_345_678, 123_456_789, 654_321_987, 10**12])
def test_cap_for_is_the_largest_cap_the_amount_covers(held, candidates):
    config = {"candidateCount": candidates}
    plan = plan_for(native({"text": "hello"}, tools=[{"googleSearch": {}}], generationConfig=config))
    cap = plan.cap_for(held)
    assert 0 <= cap <= plan.allowed_cap
    if cap:
        assert plan.cost(cap) <= held
    if cap < plan.allowed_cap:
        assert plan.cost(cap + 1) > held
    assert plan.cap_for(plan.minimum) >= 1024 and plan.cap_for(plan.amount) == plan.allowed_cap


def test_embeddings_cap_nothing():
    plan = plan_hold(read("embedContent", {"content": {"parts": [{"text": "abc"}]}}), PRO, (2048, 1), 1024, 0)
    assert plan.allowed_cap == 0 and plan.cap_for(10**9) == 0 and plan.amount == plan.minimum == plan.cost(0) > 0


def test_estimated_usage_is_never_more_than_the_worst_case():
    request = read("generateContent", native({"text": "x" * 400}, generationConfig={"candidateCount": 2}))
    assert estimate.estimated_usage(request, 41, 1000, 10**6) == Usage(prompt=100, candidates=11, total=111)
    assert estimate.estimated_usage(request, 10**6, 10, 10**6).candidates == 20  # two candidates of 10
    assert estimate.estimated_usage(request, 0, 10, 7).prompt == 7
    embed = read("embedContent", {"content": {"parts": [{"text": "abcd"}]}})
    assert estimate.estimated_usage(embed, 400, 0, 100, grounding=1) == Usage(prompt=1, total=1, grounding_queries=1)


def test_merged_keeps_the_reported_prompt_and_the_larger_output():
    reported = Usage(prompt=50, cached=10, candidates=5, thoughts=7, total=62)
    assert estimate.merged(reported, Usage(prompt=80, candidates=3)) is reported
    merged = estimate.merged(reported, Usage(prompt=80, candidates=9, grounding_queries=2))
    assert merged == Usage(prompt=50, cached=10, candidates=9, thoughts=7, total=66, grounding_queries=2)
    assert estimate.merged(Usage(candidates=1), Usage(prompt=4, candidates=1)).prompt == 4


def test_taps_count_delivered_text():
    native_chunks = [{"candidates": [{"content": {"parts": [{"text": "abc"}, {"text": "de", "thought": True}]}},
                                     {"content": {"parts": [{"text": "fg"}]}}]},
                     {"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": {"text": "x"}}}]}}],
                      "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2}}]
    openai_chunks = [{"choices": [{"delta": {"content": "hello"}}, {"delta": {"content": "you"}}]},
                     {"choices": [{"delta": {}}], "usage": {"prompt_tokens": 1}}]
    tap = SseUsageTap()
    tap.feed("".join(f"data: {json.dumps(c)}\r\n\r\n" for c in native_chunks).encode())
    assert tap.evidence == Evidence(Usage(prompt=3, candidates=2, total=5), 0, 7)
    tap = SseUsageTap()
    tap.feed("".join(f"data: {json.dumps(c)}\n\n" for c in openai_chunks).encode() + b"data: [DONE]\n\n")
    assert tap.evidence.output_chars == 8 and tap.evidence.reported == Usage(prompt=1, total=1)
    assert SseUsageTap().evidence == Evidence()


@pytest.mark.parametrize("split", [1, 3, 64, 10_000])
def test_array_tap_counts_text_across_any_split(split):
    grounding = {"groundingSupports": [{"segment": {"text": "not counted"}}], "webSearchQueries": ["q"]}
    elements = [
        {"candidates": [{"content": {"parts": [{"text": "héllo \"text\": wörld"}]}}]},
        {"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": {"text": "no"}}},
                                               {"text": "ok"}]}, "groundingMetadata": grounding}],
         "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 6}},
    ]
    stream = ("[" + ",\r\n".join(json.dumps(e, indent=2, ensure_ascii=False) for e in elements) + "]").encode()
    tap = ArrayUsageTap()
    for start in range(0, len(stream), split):
        tap.feed(stream[start:start + split])
    assert tap.evidence == Evidence(Usage(prompt=4, candidates=6, total=10), 1, len('héllo "text": wörld') + 2)


def test_whole_answers_show_usage_and_text():
    body = {"choices": [{"message": {"content": "four"}}]}
    assert evidence_of_body(json.dumps(body).encode()) == Evidence(None, 0, 4)
    assert evidence_of_body(b"[") == Evidence()
    assert evidence_of_body(b'{"embedding": {"values": [1]}}').reported is None


def meter_for(payload: dict, hold: int, output_cap: int = 100) -> Meter:
    metered = Meter(None, None, HoldPolicy(0), 1, 1, "streamGenerateContent")
    metered.price, metered.request, metered.hold = PRO, read("streamGenerateContent", payload), hold
    metered.output_cap, metered.worst_input = output_cap, 10**6
    return metered


def test_the_meter_charges_the_best_evidence():
    metered = meter_for(native({"text": "x" * 40}), hold=10**9)
    reported = Usage(prompt=12, candidates=3, total=15)
    assert metered.charged(Evidence(reported, 0, 400)) == (reported, "reported")
    assert metered.charged(Evidence(None, 0, 40)) == (Usage(prompt=10, candidates=10, total=20), "estimated")
    assert metered.charged(Evidence(reported, 0, 8), complete=False) == (reported, "reported")
    early = metered.charged(Evidence(reported, 0, 400), complete=False)
    assert early == (Usage(prompt=12, candidates=100, total=112), "estimated")  # the estimate stops at the cap


def test_a_stream_passes_its_hold_only_on_what_it_showed():
    metered = meter_for(native({"text": "x" * 40}), hold=cost_nano(Usage(prompt=10, candidates=100), PRO.base))
    assert not metered.passes_hold(Evidence(None, 0, 10**6))  # estimated output never passes the cap
    assert not metered.passes_hold(Evidence(Usage(prompt=10, candidates=100), 0, 0))
    assert metered.passes_hold(Evidence(Usage(prompt=10, candidates=101), 0, 0))
    assert metered.passes_hold(Evidence(Usage(prompt=10, tool_prompt=5000, candidates=1), 0, 0))
    free = Meter(None, None, HoldPolicy(0), 1, 1, "countTokens")
    assert not free.passes_hold(Evidence(Usage(prompt=10**6), 0, 0))
    assert free.charged(Evidence(None, 0, 10**6)) == (Usage(), "reported")


@pytest.mark.parametrize("chars", [0, 1, 400, 10**6, 10**9])
def test_an_estimate_alone_never_costs_more_than_the_hold(chars):
    """Why `passes_hold` does not price chunks that report nothing: priced in full, they never pass."""
    metered = meter_for(native({"text": "x" * 40}), hold=cost_nano(Usage(prompt=10, candidates=100), PRO.base))
    estimate = metered.charged(Evidence(None, 0, chars), complete=False)[0]
    assert metered.cost(estimate) <= metered.hold
