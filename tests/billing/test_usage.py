"""Token usage from upstream answers, with Gemini's semantics, whole and streamed."""

import json

import pytest

from vault.billing.usage import (
    NO_USAGE,
    ArrayUsageTap,
    OpenAIUsageStripper,
    SseUsageTap,
    Usage,
    from_body,
    from_native,
    from_openai,
)


def test_native_semantics():
    usage = from_native({"promptTokenCount": 100, "cachedContentTokenCount": 40, "candidatesTokenCount": 10,
                         "thoughtsTokenCount": 25, "toolUsePromptTokenCount": 5, "totalTokenCount": 140})
    assert usage == Usage(prompt=100, cached=40, tool_prompt=5, candidates=10, thoughts=25, total=140)
    assert usage.output == 35  # thoughts are billed as output, outside candidates


def test_missing_fields_are_zero_and_total_is_derived():
    assert from_native({"promptTokenCount": 4}) == Usage(prompt=4, total=4)
    assert from_native({"promptTokenCount": "x", "candidatesTokenCount": -3}) == Usage()


def test_openai_thinking_tokens_are_what_the_total_exceeds():
    usage = from_openai({"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 30})
    assert (usage.candidates, usage.thoughts, usage.output) == (2, 24, 26)
    assert from_openai({"prompt_tokens": 7, "total_tokens": 7}) == Usage(prompt=7, total=7)


def test_whole_bodies():
    native = {"usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2}}
    assert from_body(json.dumps(native).encode()).total == 5
    assert from_body(b'{"usage": {"prompt_tokens": 2, "total_tokens": 2}}').prompt == 2
    assert from_body(b"not json") is NO_USAGE
    assert from_body(b'{"embeddings": []}') is NO_USAGE


def sse(*payloads, ending="\r\n\r\n") -> bytes:
    return "".join(f"data: {json.dumps(p)}{ending}" for p in payloads).encode()


CUMULATIVE = [{"usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": n, "totalTokenCount": 4 + n}}
              for n in (1, 3, 7)]


@pytest.mark.parametrize("split", [1, 7, 1000])
def test_sse_tap_keeps_the_last_usage_never_the_sum(split):
    stream, tap = sse(*CUMULATIVE), SseUsageTap()
    for start in range(0, len(stream), split):
        tap.feed(stream[start:start + split])
    assert tap.usage == Usage(prompt=4, candidates=7, total=11)


def test_sse_tap_reads_openai_usage_and_ignores_done():
    tap = SseUsageTap()
    tap.feed(sse({"choices": [{"delta": {"content": "hi"}}],
                  "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}}, ending="\n\n"))
    tap.feed(b"data: [DONE]\n\n")
    assert tap.usage.total == 3


@pytest.mark.parametrize("split", [1, 5, 64, 100_000])
def test_array_tap_reads_pretty_printed_elements(split):
    body = ("[" + ",\n".join(json.dumps(chunk, indent=2) for chunk in CUMULATIVE) + "]").encode()
    tap = ArrayUsageTap()
    for start in range(0, len(body), split):
        tap.feed(body[start:start + split])
    assert tap.usage == Usage(prompt=4, candidates=7, total=11)


def test_array_tap_keeps_what_it_saw_when_cut_short():
    body = ("[" + ",\n".join(json.dumps(chunk, indent=2) for chunk in CUMULATIVE[:2])).encode()
    tap = ArrayUsageTap()
    tap.feed(body + b',\n{"candidates": [{"content": ')
    assert tap.usage.candidates == 3


def test_stripper_removes_usage_the_client_did_not_ask_for():
    content = {"choices": [{"delta": {"content": "hi"}, "finish_reason": "stop"}],
               "usage": {"prompt_tokens": 2, "total_tokens": 3}}
    usage_only = {"choices": [], "usage": {"prompt_tokens": 2, "total_tokens": 3}}
    plain = {"choices": [{"delta": {"content": "a"}}]}
    stream = sse(plain, content, usage_only, ending="\n\n") + b"data: [DONE]\n\n"
    stripper, out = OpenAIUsageStripper(), b""
    for start in range(0, len(stream), 9):
        out += stripper.feed(stream[start:start + 9])
    out += stripper.flush()
    events = [event for event in out.split(b"\n\n") if event]
    assert events[-1] == b"data: [DONE]"
    assert b'"usage"' not in out and len(events) == 3
    assert json.loads(events[1][6:])["choices"][0]["delta"]["content"] == "hi"


def test_stripper_handles_crlf_framing():
    stripper = OpenAIUsageStripper()
    out = stripper.feed(sse({"choices": [{"delta": {}}], "usage": {"total_tokens": 1}}, ending="\r\n\r\n"))
    assert out and b"usage" not in out
