"""Google system parameters (field masks, prettyPrint, alt, method override), redirects, raw request capture."""

import http.client
import json

import pytest
import requests

from tests.fake_gemini import Redirect
from tests.fake_gemini.script import Reply
from tests.fake_gemini.sysparams import apply_mask, parse_mask

MODEL = "gemini-2.5-flash"
KEY = "AIzaSyTEST-sysparams"
BODY = {"contents": [{"role": "user", "parts": [{"text": "Say hi"}]}]}
HEADERS = {"x-goog-api-key": KEY}


def native(fake, method: str = "generateContent") -> str:
    """The URL of a native method of MODEL on the fake."""
    return f"{fake.base_url}/v1beta/models/{MODEL}:{method}"


def post(url: str, params: dict | None = None, headers: dict | None = None, **kwargs) -> requests.Response:
    """POST BODY with the test key in the header."""
    return requests.post(url, json=kwargs.pop("json", BODY), params=params, headers=HEADERS | (headers or {}),
                         timeout=5, **kwargs)


# field masks

@pytest.mark.parametrize(("where", "name"), [("query", "fields"), ("query", "$fields"),
                                             ("header", "X-Goog-FieldMask")])
def test_a_field_mask_drops_usage_metadata(fake_gemini, where, name):
    extra = {"params": {name: "candidates"}} if where == "query" else {"headers": {name: "candidates"}}
    answer = post(native(fake_gemini), **extra).json()
    assert list(answer) == ["candidates"]
    call = fake_gemini.last_request
    assert call.field_mask == "candidates" and call.usage is None
    assert (where, name.lower() if where == "header" else name, "candidates") in call.system_params


def test_dotted_and_comma_separated_paths(fake_gemini):
    answer = post(native(fake_gemini), params={"fields": "candidates.content,usageMetadata.totalTokenCount"}).json()
    assert answer == {"candidates": [{"content": {"parts": [{"text": "Echo: Say hi"}], "role": "model"}}],
                      "usageMetadata": {"totalTokenCount": 5}}


def test_snake_case_slash_and_parenthesised_masks(fake_gemini):
    mask = "candidates(finish_reason,index),usage_metadata/prompt_token_count"
    answer = post(native(fake_gemini), params={"fields": mask}).json()
    assert answer == {"candidates": [{"finishReason": "STOP", "index": 0}], "usageMetadata": {"promptTokenCount": 2}}


def test_an_empty_mask_keeps_everything(fake_gemini):
    answer = post(native(fake_gemini), params={"fields": ""}).json()
    assert {"candidates", "usageMetadata", "modelVersion", "responseId"} <= set(answer)


def test_a_mask_applies_to_every_stream_event(fake_gemini):
    fake_gemini.enqueue(Reply(text="a b c"))
    response = post(native(fake_gemini, "streamGenerateContent"), params={"alt": "sse", "fields": "candidates"})
    events = [json.loads(e[6:]) for e in response.text.split("\r\n\r\n") if e]
    assert len(events) == 3 and all(list(e) == ["candidates"] for e in events)
    assert fake_gemini.last_request.usage is None


def test_a_mask_applies_on_the_openai_endpoint(fake_gemini):
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    response = requests.post(f"{fake_gemini.openai_base_url}chat/completions", json=body, params={"fields": "choices"},
                             headers={"Authorization": f"Bearer {KEY}"}, timeout=5)
    assert list(response.json()) == ["choices"]


def test_errors_are_not_masked(fake_gemini):
    response = post(native(fake_gemini), params={"fields": "candidates"}, json={})
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_mask_parsing_and_application():
    assert parse_mask("a.b, a.c ,d") == {"a": {"b": True, "c": True}, "d": True}
    assert parse_mask("a(b,c/d),a") == {"a": True}
    assert apply_mask({"a": [{"b": 1, "c": 2}], "d": 3}, parse_mask("a.b")) == {"a": [{"b": 1}]}
    assert apply_mask({"a": {"b": 1}, "d": 3}, parse_mask("*")) == {"a": {"b": 1}, "d": 3}
    assert apply_mask({"a": 1}, parse_mask("nothing")) == {}
    assert apply_mask({"finish_reason": "stop"}, parse_mask("finishReason")) == {"finish_reason": "stop"}


# prettyPrint

@pytest.mark.parametrize("name", ["prettyPrint", "$prettyPrint"])
def test_pretty_print_false_is_compact(fake_gemini, name):
    compact = post(native(fake_gemini), params={name: "false"})
    assert b"\n" not in compact.content and compact.content.startswith(b'{"candidates":[{')
    assert fake_gemini.last_request.pretty_print is False
    assert b'\n  "candidates"' in post(native(fake_gemini)).content
    assert fake_gemini.last_request.pretty_print is True


def test_pretty_print_false_compacts_errors_and_json_array_streams(fake_gemini):
    error = post(native(fake_gemini), params={"prettyPrint": "false"}, json={})
    assert error.content.startswith(b'{"error":{"code":400,')
    stream = post(native(fake_gemini, "streamGenerateContent"), params={"prettyPrint": "false"})
    assert stream.content.startswith(b'[{"candidates":') and b"\n  " not in stream.content


# alt

@pytest.mark.parametrize("alt", ["media", "proto", "xml"])
@pytest.mark.parametrize("name", ["alt", "$alt"])
def test_alt_other_than_json_or_sse_is_a_400(fake_gemini, name, alt):
    response = post(native(fake_gemini), params={name: alt})
    assert response.status_code == 400
    assert response.json() == {"error": {"code": 400, "message": "Request contains an invalid argument.",
                                         "status": "INVALID_ARGUMENT"}}
    assert fake_gemini.last_request.alt == alt


def test_alt_json_streams_an_array_and_dollar_alt_sse_streams_events(fake_gemini):
    array = post(native(fake_gemini, "streamGenerateContent"), params={"alt": "json"})
    assert array.headers["Content-Type"].startswith("application/json") and array.text.startswith("[")
    sse = post(native(fake_gemini, "streamGenerateContent"), params={"$alt": "sse"})
    assert sse.headers["Content-Type"] == "text/event-stream"


def test_alt_json_with_enum_encoding_is_accepted(fake_gemini):
    assert post(native(fake_gemini), params={"$alt": "json;enum-encoding=int"}).status_code == 200
    assert fake_gemini.last_request.alt == "json"


# X-HTTP-Method-Override

def test_method_override_get_on_a_post_routes_as_get(fake_gemini):
    response = requests.post(f"{fake_gemini.base_url}/v1beta/models", data=b"ignored",
                             headers=HEADERS | {"X-HTTP-Method-Override": "GET"}, timeout=5)
    assert response.status_code == 200 and "models" in response.json()
    call = fake_gemini.last_request
    assert (call.method, call.method_override, call.routed_method) == ("POST", "GET", "GET")
    assert call.endpoint == "listModels"
    assert ("header", "x-http-method-override", "GET") in call.system_params


def test_method_override_get_on_a_generate_path_is_a_404(fake_gemini):
    response = post(native(fake_gemini), headers={"X-HTTP-Method-Override": "GET"})
    assert response.status_code == 404 and fake_gemini.last_request.routed_method == "GET"


def test_method_override_is_ignored_on_a_get(fake_gemini):
    response = requests.get(f"{fake_gemini.base_url}/v1beta/models",
                            headers=HEADERS | {"X-HTTP-Method-Override": "DELETE"}, timeout=5)
    assert response.status_code == 200
    call = fake_gemini.last_request
    assert (call.method_override, call.routed_method) == (None, "GET")


def test_sdk_calls_carry_no_system_parameters_but_alt(fake_gemini):
    post(native(fake_gemini, "streamGenerateContent"), params={"alt": "sse"})
    assert fake_gemini.last_request.system_params == [("query", "alt", "sse")]
    post(native(fake_gemini), headers={"X-Goog-User-Project": "p", "X-Server-Timeout": "5"},
         params={"quotaUser": "u"})
    assert sorted(fake_gemini.last_request.system_params) == [
        ("header", "x-goog-user-project", "p"), ("header", "x-server-timeout", "5"), ("query", "quotaUser", "u")]


# redirects

@pytest.mark.parametrize("status", [302, 307])
def test_scripted_redirect_answers_with_location(fake_gemini, status):
    fake_gemini.enqueue(Redirect(status=status, location="https://evil.example/steal"), key=KEY)
    response = post(native(fake_gemini), allow_redirects=False)
    assert response.status_code == status
    assert response.headers["Location"] == "https://evil.example/steal"
    assert response.headers["Content-Type"] == "text/html; charset=UTF-8"
    assert b'<A HREF="https://evil.example/steal">here</A>' in response.content
    call = fake_gemini.last_request
    assert call.done.wait(5) and (call.status, call.outcome) == (status, "redirect")
    assert post(native(fake_gemini)).status_code == 200


def test_redirect_applies_to_any_endpoint_and_rejects_non_redirect_statuses(fake_gemini):
    fake_gemini.enqueue(Redirect(301, f"{fake_gemini.base_url}/stolen"), endpoint="listModels")
    response = requests.get(f"{fake_gemini.base_url}/v1beta/models", headers=HEADERS, timeout=5)
    assert response.status_code == 404 and response.history[0].status_code == 301
    assert [c.path for c in fake_gemini.calls] == ["/v1beta/models", "/stolen"]
    with pytest.raises(ValueError):
        Redirect(200, "https://x")


# raw request capture

def test_raw_path_target_query_and_headers_are_kept_as_sent(fake_gemini):
    conn = http.client.HTTPConnection("127.0.0.1", fake_gemini.port, timeout=5)
    target = "/v1beta/models/gemini%2D2.5%2Dflash:generateContent?%24fields=candidates&key=AIza-q"
    conn.request("POST", target, body=json.dumps(BODY),
                 headers={"X-Goog-Api-Key": KEY, "Content-Type": "application/json", "X-Mixed-Case": "Yes"})
    response = conn.getresponse()
    assert response.status == 200 and list(json.loads(response.read())) == ["candidates"]
    conn.close()
    call = fake_gemini.last_request
    assert call.raw_path == "/v1beta/models/gemini%2D2.5%2Dflash:generateContent"
    assert call.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert call.request_target == target and call.query_string == "%24fields=candidates&key=AIza-q"
    assert ("X-Goog-Api-Key", KEY) in call.raw_headers and ("X-Mixed-Case", "Yes") in call.raw_headers
    assert ("x-goog-api-key", KEY) in call.header_list
    assert call.credentials == [("header", KEY), ("query", "AIza-q")]
