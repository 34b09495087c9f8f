"""The fake on the wire, seen through raw `requests`: framing, gates, disconnects, hangs, auth."""

import json
import threading
import time

import pytest
import requests

from tests.fake_gemini import faults
from tests.fake_gemini.script import Reply, Reset
from tests.fake_gemini.server import FakeGemini

KEY = "AIzaSyTEST-wire"
BODY = {"contents": [{"role": "user", "parts": [{"text": "Say hi"}]}]}


def native(fake: FakeGemini, method: str, version: str = "v1beta", model: str = "gemini-2.5-flash") -> str:
    """The URL of a native model method on the fake."""
    return f"{fake.base_url}/{version}/models/{model}:{method}"


def post(url: str, body: object = BODY, key: str | None = KEY, headers: dict | None = None,
         **kwargs) -> requests.Response:
    """POST JSON with the key in `x-goog-api-key` (unless `key` is None)."""
    headers = ({"x-goog-api-key": key} if key else {}) | (headers or {})
    return requests.post(url, json=body, headers=headers, timeout=kwargs.pop("timeout", 5), **kwargs)


def test_sse_framing_is_crlf_with_no_done(fake_gemini):
    response = post(native(fake_gemini, "streamGenerateContent"), params={"alt": "sse"})
    assert response.headers["Content-Type"] == "text/event-stream"
    assert response.headers["Transfer-Encoding"] == "chunked"
    events = response.text.split("\r\n\r\n")
    assert events[-1] == "" and all(e.startswith("data: {") for e in events[:-1])
    assert "[DONE]" not in response.text
    assert json.loads(events[-2][6:])["candidates"][0]["finishReason"] == "STOP"


def test_stream_without_alt_sse_is_one_progressive_json_array(fake_gemini):
    fake_gemini.enqueue(Reply(text="a b c"))
    with post(native(fake_gemini, "streamGenerateContent", "v1"), stream=True) as response:
        raw_chunks = list(response.iter_content(chunk_size=None))
    assert response.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert raw_chunks[0].startswith(b"[{") and raw_chunks[1].startswith(b",")
    assert raw_chunks[-1] == b"]"
    array = json.loads(b"".join(raw_chunks))
    assert [e["candidates"][0]["content"]["parts"][0]["text"] for e in array] == ["a ", "b ", "c"]
    assert array[-1]["usageMetadata"]["candidatesTokenCount"] == 3


def test_gate_holds_the_stream_until_released(fake_gemini):
    gate = fake_gemini.gated(Reply(chunk_texts=["one ", "two ", "three"]))
    with post(native(fake_gemini, "streamGenerateContent"), params={"alt": "sse"}, stream=True) as response:
        chunks = response.iter_content(chunk_size=None)
        assert b'"one "' in next(chunks)
        assert gate.wait_blocked() and gate.sent == 1
        gate.release()
        assert b'"two "' in next(chunks)
        assert gate.wait_blocked() and gate.sent == 2
        gate.release()
        assert b'"three"' in next(chunks)
        assert list(chunks) == []
    call = fake_gemini.last_request
    assert call.done.wait(5) and call.outcome == "ok"


def test_client_disconnect_mid_stream_is_detected(fake_gemini):
    gate = fake_gemini.gated(Reply(text="a b c d"), key=KEY)
    response = post(native(fake_gemini, "streamGenerateContent"), params={"alt": "sse"}, stream=True)
    next(response.iter_content(chunk_size=None))
    assert gate.wait_blocked()
    response.close()
    assert fake_gemini.wait_disconnect()
    call = fake_gemini.requests_for(KEY)[-1]
    assert call.done.wait(5)
    assert (call.client_disconnected, call.outcome, call.chunks_sent) == (True, "client-disconnected", 1)
    assert fake_gemini.disconnects == 1


def test_die_mid_stream_truncates_the_body(fake_gemini):
    fake_gemini.enqueue(Reply(text="a b c", die_after=1))
    received = []
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        with post(native(fake_gemini, "streamGenerateContent"), params={"alt": "sse"}, stream=True) as r:
            received.extend(r.iter_content(chunk_size=None))
    assert len(received) == 1
    assert fake_gemini.last_request.done.wait(5)
    assert fake_gemini.last_request.outcome == "died"


def test_hang_lets_the_client_time_out(fake_gemini):
    hang = fake_gemini.hang()
    with pytest.raises(requests.exceptions.ReadTimeout):
        post(native(fake_gemini, "generateContent"), timeout=(5, 0.3))
    assert hang.started.is_set()
    assert fake_gemini.wait_disconnect()
    assert fake_gemini.last_request.outcome == "client-disconnected"


def test_released_hang_answers_normally(fake_gemini):
    hang = fake_gemini.hang(endpoint="generateContent")
    result = {}
    worker = threading.Thread(target=lambda: result.update(r=post(native(fake_gemini, "generateContent"))))
    worker.start()
    assert hang.wait_started()
    hang.release()
    worker.join(5)
    assert result["r"].status_code == 200


@pytest.mark.parametrize("rst", [True, False], ids=["rst", "fin"])
def test_reset_drops_the_connection_without_response(fake_gemini, rst):
    fake_gemini.enqueue(Reset(rst=rst))
    with pytest.raises(requests.exceptions.ConnectionError):
        post(native(fake_gemini, "generateContent"))
    assert fake_gemini.last_request.done.wait(5)
    assert fake_gemini.last_request.outcome == "reset"
    assert post(native(fake_gemini, "generateContent")).status_code == 200


def test_stop_releases_held_calls_and_never_hangs():
    fake = FakeGemini().start()
    fake.hang(endpoint="generateContent")
    fake.gated(endpoint="streamGenerateContent")
    errors = []
    worker = threading.Thread(target=lambda: errors.append(_swallow(post, native(fake, "generateContent"))))
    worker.start()
    stream = post(native(fake, "streamGenerateContent"), params={"alt": "sse"}, stream=True)
    next(stream.iter_content(chunk_size=None))
    assert fake.wait_for_calls(2)
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 2
    worker.join(5)
    assert not worker.is_alive() and fake.open_connections == 0
    stream.close()


def _swallow(func, *args):
    """The call's result, or the requests exception it raised."""
    try:
        return func(*args)
    except requests.RequestException as exc:
        return exc


def test_key_in_query_is_accepted_and_logged(fake_gemini):
    response = post(native(fake_gemini, "generateContent"), key=None, params={"key": KEY})
    assert response.status_code == 200
    call = fake_gemini.last_request
    assert (call.key, call.key_source, call.query["key"]) == (KEY, "query", [KEY])
    assert "x-goog-api-key" not in call.headers


@pytest.mark.parametrize(("headers", "status", "reason"), [
    ({}, 403, "PERMISSION_DENIED"),
    ({"Authorization": f"Bearer {KEY}"}, 401, "UNAUTHENTICATED"),
    ({"x-goog-api-key": "not-a-gemini-key"}, 400, "INVALID_ARGUMENT"),
])
def test_native_auth_failures(fake_gemini, headers, status, reason):
    response = requests.post(native(fake_gemini, "generateContent"), json=BODY, headers=headers, timeout=5)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert response.json()["error"]["status"] == reason


def test_unregistered_caller_message_is_upstreams(fake_gemini):
    response = requests.get(f"{fake_gemini.base_url}/v1beta/models", timeout=5)
    assert response.json()["error"]["message"].startswith("Method doesn't allow unregistered callers")


@pytest.mark.parametrize(("body", "message"), [
    (b"{not json", "Invalid JSON payload received."),
    (b"{}", "* GenerateContentRequest.contents: contents is not specified"),
    (b"[1]", "Invalid JSON payload received."),
])
def test_bad_generate_bodies_are_invalid_argument(fake_gemini, body, message):
    response = requests.post(native(fake_gemini, "generateContent"), data=body,
                             headers={"x-goog-api-key": KEY, "Content-Type": "application/json"}, timeout=5)
    assert response.status_code == 400
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert response.json()["error"]["message"].startswith(message)


def test_count_tokens_accepts_generate_content_request_form(fake_gemini):
    request = {"model": "models/gemini-2.5-flash", "contents": BODY["contents"],
               "systemInstruction": {"parts": [{"text": "be very brief"}]}}
    response = post(native(fake_gemini, "countTokens"), {"generateContentRequest": request})
    assert response.json()["totalTokens"] == 5


def test_embed_content_and_batch_model_mismatch(fake_gemini):
    url = native(fake_gemini, "embedContent", model="gemini-embedding-001")
    single = post(url, {"content": {"parts": [{"text": "hi"}]}, "outputDimensionality": 4})
    assert len(single.json()["embedding"]["values"]) == 4
    batch = {"requests": [{"model": "models/gemini-2.5-flash", "content": {"parts": [{"text": "x"}]}}]}
    response = post(native(fake_gemini, "batchEmbedContents", model="gemini-embedding-001"), batch)
    assert response.status_code == 400
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_models_paging_tokens(fake_gemini):
    url = f"{fake_gemini.base_url}/v1beta/models"
    first = requests.get(url, params={"pageSize": 2}, headers={"x-goog-api-key": KEY}, timeout=5).json()
    assert len(first["models"]) == 2 and first["nextPageToken"]
    everything = requests.get(url, headers={"x-goog-api-key": KEY}, timeout=5).json()
    assert "nextPageToken" not in everything and len(everything["models"]) == len(fake_gemini.catalog)
    bad = requests.get(url, params={"pageToken": "garbage"}, headers={"x-goog-api-key": KEY}, timeout=5)
    assert bad.status_code == 400


def test_openai_errors_are_wrapped_in_an_array(fake_gemini):
    url = f"{fake_gemini.openai_base_url}chat/completions"
    response = requests.post(url, data=b"{oops", headers={"Authorization": f"Bearer {KEY}"}, timeout=5)
    assert response.status_code == 400
    assert response.json()[0]["error"]["status"] == "INVALID_ARGUMENT"


def test_openai_stream_framing_ends_with_done(fake_gemini):
    body = {"model": "gemini-2.5-flash", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    response = requests.post(f"{fake_gemini.openai_base_url}chat/completions", json=body,
                             headers={"Authorization": f"Bearer {KEY}"}, timeout=5)
    assert response.headers["Content-Type"] == "text/event-stream"
    assert response.text.endswith("data: [DONE]\n\n") and "\r\n" not in response.text


@pytest.mark.parametrize(("fault", "status", "content_type"), [
    (faults.bad_gateway_html(), 502, "text/html; charset=UTF-8"),
    (faults.empty_ok(), 200, "application/json; charset=UTF-8"),
])
def test_raw_fault_bodies(fake_gemini, fault, status, content_type):
    fake_gemini.enqueue(fault)
    response = post(native(fake_gemini, "generateContent"))
    assert (response.status_code, response.headers["Content-Type"]) == (status, content_type)
    assert response.content == (fault.raw or b"")


def test_unknown_path_is_an_html_404(fake_gemini):
    response = requests.get(f"{fake_gemini.base_url}/v2/nothing", timeout=5)
    assert response.status_code == 404 and "text/html" in response.headers["Content-Type"]


def test_request_log_captures_headers_query_body_and_timing(fake_gemini):
    post(native(fake_gemini, "generateContent"), params={"foo": "bar"}, headers={"X-Custom": "1"})
    call = fake_gemini.last_request
    assert call.headers["x-custom"] == "1" and ("x-custom", "1") in call.header_list
    assert call.query == {"foo": ["bar"]} and call.query_string == "foo=bar"
    assert call.json == BODY and call.status == 200
    assert call.done.wait(5) and call.duration >= 0


def test_latency_delays_every_answer(fake_gemini):
    fake_gemini.latency = 0.2
    started = time.monotonic()
    assert post(native(fake_gemini, "countTokens")).status_code == 200
    assert time.monotonic() - started >= 0.2


def test_gzip_streams_when_asked():
    with FakeGemini(gzip=True) as fake:
        with post(native(fake, "streamGenerateContent"), params={"alt": "sse"}, stream=True) as response:
            assert response.headers["Content-Encoding"] == "gzip"
            assert response.text.count("data: ") == 3


def test_a_crash_in_the_fake_is_a_500_and_is_recorded():
    with FakeGemini() as fake:
        response = post(native(fake, "generateContent"), {**BODY, "generationConfig": ["not", "an", "object"]})
        assert response.status_code == 500 and response.json()["error"]["status"] == "INTERNAL"
        assert "AttributeError" in fake.server_errors[0]
        assert post(native(fake, "generateContent")).status_code == 200


def test_chunked_request_bodies_are_read(fake_gemini):
    chunks = (part for part in (b'{"contents": [{"parts": ', b'[{"text": "streamed body"}]}]}'))
    response = requests.post(native(fake_gemini, "generateContent"), data=chunks, timeout=5,
                             headers={"x-goog-api-key": KEY, "Content-Type": "application/json"})
    assert response.json()["candidates"][0]["content"]["parts"][0]["text"] == "Echo: streamed body"
    assert fake_gemini.last_request.headers["transfer-encoding"] == "chunked"
