"""A lowered output cap in the upstream body, and a stream cut at its hold (plain functions, no server)."""

import json
from types import SimpleNamespace

import pytest

from vault.proxy.dialects import stream_error_event
from vault.proxy.routes import resolve
from vault.proxy.translate import Inbound, upstream_request
from vault.upstream.failover import Answer
from vault.upstream.relay import CUT_OFF, CutOff, relay_stream


def inbound(path: str, payload: dict, bearer: bool = False) -> Inbound:
    body = json.dumps(payload, indent=1).encode()  # spaced: re-serialising shows
    return Inbound(resolve("POST", path, [], bearer), (), body, payload)


GENERATE = "/v1beta/models/gemini-2.5-pro:generateContent"


@pytest.mark.parametrize(("payload", "expected"), [
    ({"contents": []}, {"contents": [], "generationConfig": {"maxOutputTokens": 99}}),
    ({"contents": [], "generationConfig": {"temperature": 0.5, "maxOutputTokens": 5000}},
     {"contents": [], "generationConfig": {"temperature": 0.5, "maxOutputTokens": 99}}),
    ({"contents": [], "generation_config": {"max_output_tokens": 5000}},
     {"contents": [], "generation_config": {"max_output_tokens": 99}}),
])
def test_a_native_body_gets_the_lowered_cap_in_the_clients_spelling(payload, expected):
    sent = upstream_request(inbound(GENERATE, payload), output_cap=99)
    assert json.loads(sent.body) == expected and b"\n" not in sent.body


def test_without_a_lowered_cap_native_bytes_go_as_sent():
    request = inbound(GENERATE, {"contents": [], "generationConfig": {"maxOutputTokens": 5}})
    assert upstream_request(request).body == request.body


@pytest.mark.parametrize(("payload", "expected"), [
    ({}, {"max_tokens": 7}),
    ({"max_tokens": 500}, {"max_tokens": 7}),
    ({"max_completion_tokens": 500}, {"max_completion_tokens": 7}),
    ({"max_tokens": 500, "max_completion_tokens": 400}, {"max_tokens": 7, "max_completion_tokens": 7}),
])
def test_an_openai_body_gets_the_lowered_cap(payload, expected):
    chat = {"model": "gemini-2.5-pro", "messages": [{"role": "user", "content": "hi"}], "stream": True} | payload
    sent = json.loads(upstream_request(inbound("/v1/chat/completions", chat, bearer=True), output_cap=7).body)
    assert {k: sent.get(k) for k in expected} == expected
    assert sent["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize(("dialect", "terminator", "status"), [("google", b"\r\n\r\n", 402), ("openai", b"\n\n", None)])
def test_the_cut_off_event_is_a_402_in_the_dialect(dialect, terminator, status):
    event = stream_error_event(dialect, True, CUT_OFF)
    assert event.startswith(b"data: {") and event.endswith(terminator)
    error = json.loads(event[6:])["error"]
    assert error.get("code") == (status or "insufficient_balance")
    assert "balance" in error["message"]
    assert b"502" in stream_error_event("google", True) and stream_error_event("google", False, CUT_OFF) is None


class Upstream:
    """Just enough of a streamed `requests.Response` for the relay."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.raw = SimpleNamespace(read1=lambda size: pieces.pop(0) if pieces else b"")
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_a_stream_is_cut_before_the_piece_that_passes_its_hold():
    upstream, endings = Upstream([b"b", b"c", b"d"]), []
    answer = Answer(key=SimpleNamespace(masked="AIza…"), status=200, headers={}, response=upstream, first_chunk=b"a")

    def observe(piece: bytes) -> None:
        if piece == b"c":
            raise CutOff()

    relayed = list(relay_stream(answer, lambda ending: f"<{ending}>".encode(), endings.append, observe=observe))
    assert relayed == [b"a", b"b", b"<cut_off>"]
    assert endings == [CUT_OFF] and upstream.closed
    no_event = relay_stream(Answer(key=SimpleNamespace(masked="k"), status=200, headers={}, response=Upstream([b"c"])),
                            lambda ending: None, endings.append, observe=observe)
    with pytest.raises(ConnectionAbortedError):
        list(no_event)
