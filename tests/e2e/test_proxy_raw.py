"""The proxy with plain HTTP requests: every auth form, header hygiene, errors, streaming."""

import json

import pytest
import requests

from tests.fake_gemini import Reply, faults

GENERATE = "/v1beta/models/gemini-2.5-flash:generateContent"
STREAM = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
PROMPT = {"contents": [{"role": "user", "parts": [{"text": "Say hi"}]}]}
CHAT = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "Say hi"}]}


def post(stack, path, body=PROMPT, **kwargs):
    return requests.post(stack.base_url + path, json=body, timeout=30, **kwargs)


@pytest.mark.parametrize("how", ["x-goog-api-key", "query", "bearer"])
def test_every_auth_form_on_native_paths(stack, how):
    headers, params = {}, {}
    if how == "x-goog-api-key":
        headers["x-goog-api-key"] = stack.vault_key
    elif how == "query":
        params["key"] = stack.vault_key
    else:
        headers["Authorization"] = f"Bearer {stack.vault_key}"
    response = post(stack, GENERATE, headers=headers, params=params)
    assert response.status_code == 200, response.text
    assert response.json()["candidates"][0]["content"]["parts"][0]["text"] == "Echo: Say hi"
    call = stack.fake.last_request
    assert call.key in stack.upstream_keys and call.key_source == "header"
    assert "key" not in call.query and "authorization" not in call.headers


def test_openai_paths_send_the_upstream_key_as_bearer(stack):
    response = post(stack, "/v1/chat/completions", CHAT, headers={"Authorization": f"Bearer {stack.vault_key}"})
    assert response.status_code == 200
    call = stack.fake.last_request
    assert call.path == "/v1beta/openai/chat/completions"
    assert call.key in stack.upstream_keys and call.key_source == "bearer"


def test_v1beta_openai_passthrough(stack):
    response = post(stack, "/v1beta/openai/chat/completions", CHAT,
                    headers={"Authorization": f"Bearer {stack.vault_key}"})
    assert response.status_code == 200 and response.json()["object"] == "chat.completion"


def test_v1_models_shape_follows_the_auth_style(stack):
    as_openai = requests.get(f"{stack.base_url}/v1/models", timeout=10,
                             headers={"Authorization": f"Bearer {stack.vault_key}"}).json()
    as_native = requests.get(f"{stack.base_url}/v1/models", timeout=10,
                             headers={"x-goog-api-key": stack.vault_key}).json()
    assert as_openai["object"] == "list" and "data" in as_openai
    assert "models" in as_native


def test_headers_and_query_are_cleaned(stack):
    headers = {"x-goog-api-key": stack.vault_key, "X-Stainless-Lang": "python", "Cookie": "session=abc",
               "Proxy-Authorization": "Basic eA==", "TE": "trailers", "x-goog-api-client": "genai-test/1.0",
               "X-Forwarded-For": "10.1.2.3"}
    response = requests.post(f"{stack.base_url}{STREAM}", params={"alt": "sse", "key": stack.vault_key},
                             json=PROMPT, headers=headers, timeout=10)
    assert response.status_code == 200
    call = stack.fake.last_request
    assert call.query == {"alt": ["sse"]}
    assert call.headers["x-goog-api-client"] == "genai-test/1.0"
    for dropped in ("x-stainless-lang", "cookie", "proxy-authorization", "te", "x-forwarded-for"):
        assert dropped not in call.headers
    assert stack.vault_key not in json.dumps(call.headers) + call.query_string + call.raw_body.decode()
    assert response.headers["X-Accel-Buffering"] == "no"
    assert response.headers["Content-Type"].startswith("text/event-stream")


@pytest.mark.parametrize(("path", "dialect"), [(GENERATE, "google"), ("/v1/chat/completions", "openai")])
@pytest.mark.parametrize("key", [None, "gv-unknown-key-000000000000000000000000000000000", "revoked"])
def test_bad_vault_keys_get_401_before_any_upstream_call(stack, path, dialect, key):
    if key == "revoked":
        headers = {"Authorization": f"Bearer {stack.user_token}"}
        created = requests.post(f"{stack.base_url}/api-keys/", headers=headers, json={}, timeout=10).json()
        requests.delete(f"{stack.base_url}/api-keys/{created['id']}", headers=headers, timeout=10)
        key = created["key"]
    auth = {"Authorization": f"Bearer {key}"} if dialect == "openai" and key else (
        {"x-goog-api-key": key} if key else {})
    response = post(stack, path, CHAT if dialect == "openai" else PROMPT, headers=auth)
    assert response.status_code == 401
    error = response.json()["error"]
    if dialect == "google":
        assert error["code"] == 401 and error["status"] == "UNAUTHENTICATED"
    else:
        assert error["type"] == "authentication_error" and error["message"]
    assert stack.fake.calls == []


def test_body_over_the_limit_is_413(stack):
    huge = b'{"contents": "' + b"x" * (21 * 1024 * 1024) + b'"}'
    response = requests.post(stack.base_url + GENERATE, data=huge, timeout=30,
                             headers={"x-goog-api-key": stack.vault_key, "Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert stack.fake.calls == []


@pytest.mark.parametrize(("path", "auth"), [(GENERATE, "x-goog-api-key"), ("/v1/chat/completions", "Authorization")])
def test_malformed_json_is_refused_at_the_door(stack, path, auth):
    value = stack.vault_key if auth == "x-goog-api-key" else f"Bearer {stack.vault_key}"
    response = requests.post(stack.base_url + path, data=b'{"contents": [', timeout=10,
                             headers={auth: value, "Content-Type": "application/json"})
    assert response.status_code == 400
    error = response.json()["error"]
    if auth == "x-goog-api-key":
        assert error["status"] == "INVALID_ARGUMENT"
    else:
        assert error["type"] == "invalid_request_error"
    assert stack.fake.calls == []


def test_client_errors_pass_through_without_blame(stack):
    response = post(stack, "/v1beta/models/gemini-nope:generateContent", headers={"x-goog-api-key": stack.vault_key})
    assert response.status_code == 404 and response.json()["error"]["status"] == "NOT_FOUND"
    assert len(stack.fake.calls) == 1
    assert all(key["consecutive_failures"] == 0 for key in stack.pool())


def test_first_chunk_arrives_before_the_upstream_finishes(stack):
    gate = stack.fake.gated(Reply(chunk_texts=["first ", "second ", "third"]))
    with requests.post(f"{stack.base_url}{STREAM}?alt=sse", json=PROMPT, stream=True, timeout=10,
                       headers={"x-goog-api-key": stack.vault_key}) as response:
        lines = response.iter_lines()
        first = next(line for line in lines if line)
        assert gate.wait_blocked(timeout=5)
        assert b"first" in first and gate.sent == 1
        gate.open()
        rest = b"\n".join(lines)
    assert b"third" in rest


def test_openai_stream_is_relayed_chunk_by_chunk(stack):
    gate = stack.fake.gated(Reply(chunk_texts=["alpha ", "beta"]))
    with requests.post(f"{stack.base_url}/v1/chat/completions", json=CHAT | {"stream": True}, stream=True,
                       timeout=10, headers={"Authorization": f"Bearer {stack.vault_key}"}) as response:
        lines = response.iter_lines()
        assert b"alpha" in next(line for line in lines if line)
        assert gate.wait_blocked(timeout=5) and gate.sent == 1
        gate.open()
        assert b"data: [DONE]" in b"\n".join(lines)


def test_client_disconnect_closes_the_upstream_stream(stack):
    gate = stack.fake.gated(Reply(chunk_texts=[f"word{n} " for n in range(20)]))
    response = requests.post(f"{stack.base_url}{STREAM}?alt=sse", json=PROMPT, stream=True, timeout=10,
                             headers={"x-goog-api-key": stack.vault_key})
    next(line for line in response.iter_lines() if line)
    assert gate.wait_blocked(timeout=5)
    response.close()
    # The Vault learns of the departure when a write fails, so let chunks out one at a time
    # until the upstream sees its connection closed, long before the stream would end.
    for _ in range(10):
        gate.release(1)
        if stack.fake.wait_disconnect(timeout=2):
            break
    assert stack.fake.disconnects == 1
    assert gate.sent < 20


@pytest.mark.parametrize(("path", "body", "auth", "marker"), [
    (f"{STREAM}?alt=sse", PROMPT, "x-goog-api-key", b'data: {"error":{"code":502'),
    ("/v1/chat/completions", CHAT | {"stream": True}, "Authorization", b'data: {"error":{"message"'),
])
def test_upstream_dying_mid_stream_ends_with_an_error_event(stack, path, body, auth, marker):
    stack.fake.enqueue(Reply(chunk_texts=["partial ", "answer ", "never"], die_after=1))
    value = stack.vault_key if auth == "x-goog-api-key" else f"Bearer {stack.vault_key}"
    response = requests.post(stack.base_url + path, json=body, headers={auth: value}, timeout=10)
    assert response.status_code == 200
    assert b"partial" in response.content and marker in response.content
    assert b"never" not in response.content
    assert len(stack.fake.calls) == 1, "a stream that has started is never restarted on another key"


def test_empty_200_is_retried_on_another_key(stack):
    stack.fake.enqueue(faults.empty_ok())
    response = post(stack, GENERATE, headers={"x-goog-api-key": stack.vault_key})
    assert response.status_code == 200 and response.json()["candidates"]
    calls = stack.fake.calls
    assert len(calls) == 2 and calls[0].key != calls[1].key


def test_stream_without_sse_is_one_json_array_passed_through(stack):
    stack.fake.enqueue(Reply(chunk_texts=["one ", "two ", "three"]))
    response = requests.post(stack.base_url + STREAM, json=PROMPT, headers={"x-goog-api-key": stack.vault_key},
                             timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("application/json")
    chunks = response.json()
    assert isinstance(chunks, list) and len(chunks) == 3
    assert stack.fake.last_request.query == {}


def test_a_broken_non_sse_stream_is_cut_not_completed(stack):
    stack.fake.enqueue(Reply(chunk_texts=["one ", "two ", "three"], die_after=1))
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.post(stack.base_url + STREAM, json=PROMPT, headers={"x-goog-api-key": stack.vault_key}, timeout=10)


def test_deactivated_user_gets_403_over_http(own_stack):
    stack = own_stack(key_count=1)
    me = requests.get(f"{stack.base_url}/auth/users/me", headers={"Authorization": f"Bearer {stack.user_token}"},
                      timeout=10).json()
    deactivated = requests.patch(f"{stack.base_url}/admin/api/users/{me['id']}", json={"is_active": False},
                                 headers=stack.admin(), timeout=10)
    assert deactivated.status_code == 200
    native = post(stack, GENERATE, headers={"x-goog-api-key": stack.vault_key})
    openai = post(stack, "/v1/chat/completions", CHAT, headers={"Authorization": f"Bearer {stack.vault_key}"})
    assert native.status_code == openai.status_code == 403
    assert native.json()["error"]["status"] == "PERMISSION_DENIED"
    assert openai.json()["error"]["type"] == "permission_error"
    assert stack.fake.calls == []
