"""Class 3 -- header smuggling: the upstream gets the allow-list and one pooled key, nothing else.

Whatever the client adds (credentials, cookies, hop-by-hop headers, Google's header-borne
system parameters, forwarding headers), the fake must see only host, content-type,
content-length, user-agent, x-goog-api-client, accept-encoding (and accept/connection as
the HTTP client adds them) plus exactly one credential header holding a pooled key -- or the
request is refused in the caller's dialect with no upstream call. Runs on the private
`pooled` Vault, since a credential that got through would hurt the pool.
"""

import base64
import socket

import pytest

from tests.e2e.hostile.probe import (
    CHAT,
    EMBED,
    PROMPT,
    address_of,
    assert_clean_upstream_call,
    assert_dialect,
    assert_no_secret_in,
    assert_no_upstream_call,
    auth_for,
    only_call,
    parse_response,
    pool_health,
    read_until_closed,
    send,
    send_bytes,
)

SMUGGLED = "AIzaSySMUGGLED0000000000000000000000000"
TARGETS = [
    ("POST", "/v1beta/models/gemini-2.5-flash:generateContent", "/v1beta/models/gemini-2.5-flash:generateContent",
     "google"),
    ("GET", "/v1/models/gemini-2.5-flash", "/v1/models/gemini-2.5-flash", "google"),
    ("POST", "/v1/chat/completions", "/v1beta/openai/chat/completions", "openai"),
    ("POST", "/v1beta/openai/embeddings", "/v1beta/openai/embeddings", "openai"),
]
CLIENT = "genai-hostile/1.0 gl-python/3.11"
# id -> headers added to an otherwise well-authenticated request ({vk} is the caller's Vault key)
EXTRA = {
    "x-api-key": [("X-Api-Key", "{vk}")],
    "second-bearer": [("Authorization", f"Bearer {SMUGGLED}")],
    "basic-auth": [("Authorization", "Basic dXNlcjpwYXNz")],
    "second-x-goog-api-key": [("x-goog-api-key", SMUGGLED)],
    "cookie": [("Cookie", f"session=abc; key={SMUGGLED}")],
    "referer-origin": [("Referer", "https://evil.example/"), ("Origin", "https://evil.example")],
    "connection-names-x-foo": [("Connection", "X-Foo, keep-alive"), ("X-Foo", "bar")],
    "field-mask": [("X-Goog-FieldMask", "candidates")],
    "method-override": [("X-HTTP-Method-Override", "GET"), ("X-HTTP-Method", "DELETE"),
                        ("X-Method-Override", "PUT")],
    "user-project": [("X-Goog-User-Project", "another-project")],
    "quota-user": [("X-Goog-Quota-User", "someone-else"), ("X-Goog-Request-Reason", "audit")],
    "server-timeout": [("X-Server-Timeout", "1"), ("X-Goog-Api-Version", "v1alpha")],
    "forwarded": [("X-Forwarded-For", "10.0.0.1"), ("X-Forwarded-Host", "evil.example"),
                  ("X-Forwarded-Proto", "https"), ("Forwarded", "for=10.0.0.1;host=evil.example"),
                  ("X-Real-IP", "10.0.0.1"), ("Via", "1.1 evil")],
    "proxy-authorization": [("Proxy-Authorization", f"Bearer {SMUGGLED}")],
    "te-trailers": [("TE", "trailers")],
    "request-id": [("X-Request-Id", "hostile-request-id-1")],
    "stainless": [("X-Stainless-Lang", "python"), ("X-Stainless-Retry-Count", "0"), ("OpenAI-Organization", "org")],
    "goog-headers": [("X-Goog-Spatula", "x"), ("X-Goog-Authenticated-User-Email", "root@google.com"),
                     ("X-Goog-Iap-Jwt-Assertion", "jwt")],
    "accept-encoding-gzip": [("Accept-Encoding", "gzip, br")],
    "content-encoding": [("Content-Encoding", "identity")],
    "api-client-ok": [("x-goog-api-client", CLIENT), ("User-Agent", "hostile-agent/2")],
    "api-client-tab": [("x-goog-api-client", "genai\tevil")],
    "api-client-latin1": [("x-goog-api-client", "genai-é")],
    "api-client-long": [("x-goog-api-client", "g" * 300)],
    "api-client-twice": [("x-goog-api-client", CLIENT), ("x-goog-api-client", "second/1")],
    "user-agent-odd": [("User-Agent", "ua\tx")],
    "upgrade-h2c": [("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"),
                    ("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA")],
    "upgrade-websocket": [("Connection", "Upgrade"), ("Upgrade", "websocket"),
                          ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")],
    "underscored-key": [("x_goog_api_key", SMUGGLED)],
}


def expected_client_header(extra: list[tuple[str, str]]) -> str | None:
    """The x-goog-api-client the upstream should see: the client's (repeats joined by the server), when it
    is short printable text."""
    values = [value for name, value in extra if name.lower() == "x-goog-api-client"]
    if not values:
        return None
    value = ",".join(values)
    return value if all(32 <= ord(c) < 127 for c in value) and len(value) <= 256 else None


def attempt(stack, target, extra):
    method, path, upstream_path, dialect = target
    body = None if method == "GET" else (EMBED if "embeddings" in path else CHAT) if dialect == "openai" else PROMPT
    extra = [(name, value.replace("{vk}", stack.vault_key)) for name, value in extra]
    before = pool_health(stack)
    answer = send(stack, method, path, auth_for(stack, dialect, body is not None) + extra, body)
    calls = stack.fake.calls
    if not calls:
        assert_dialect(answer, (400, 401), dialect)
    else:
        assert answer.status == 200, answer.body[:300]
        record = only_call(stack)
        assert_clean_upstream_call(stack, record, upstream_path, dialect=dialect, method=method)
        assert record.headers.get("x-goog-api-client") == expected_client_header(extra)
        assert record.headers["host"] == stack.fake.base_url.removeprefix("http://")
        assert record.headers["accept-encoding"] == "identity"
        if body is not None:
            assert record.headers["content-type"] == "application/json"
    assert pool_health(stack) == before
    assert_no_secret_in(stack, answer.text())
    return answer


@pytest.mark.parametrize("extra", list(EXTRA.values()), ids=list(EXTRA))
@pytest.mark.parametrize("target", TARGETS, ids=lambda target: f"{target[0]} {target[1]}")
def test_smuggled_headers_never_reach_the_upstream(pooled, target, extra):
    attempt(pooled, target, extra)


def test_the_forwarded_identification_headers_are_the_clients(pooled):
    attempt(pooled, TARGETS[0], EXTRA["api-client-ok"])
    record = only_call(pooled)
    assert record.headers["x-goog-api-client"] == CLIENT and record.headers["user-agent"] == "hostile-agent/2"
    assert record.headers["host"] == pooled.fake.base_url.removeprefix("http://")


@pytest.mark.parametrize("dialect", ["google", "openai"])
@pytest.mark.parametrize("credential", [
    [("X-Api-Key", "{vk}")], [("Api-Key", "{vk}")], [("Cookie", "key={vk}")], [("Proxy-Authorization", "Bearer {vk}")],
    [("Authorization", "{vk}")], [("Authorization", "Token {vk}")], [("Authorization", "Basic {vk64}")],
    [("x-goog-api-key", SMUGGLED), ("Authorization", "Bearer {vk}")], [("X-Goog-Api-Key", "")],
    [("x-goog-api-key", "{vk}x")], [("Authorization", "Bearer")],
], ids=lambda credential: "+".join(name for name, _ in credential))
def test_a_vault_key_anywhere_but_the_three_doors_is_401(pooled, dialect, credential):
    vk64 = base64.b64encode(f"{pooled.vault_key}:".encode()).decode()
    headers = [(name, value.replace("{vk}", pooled.vault_key).replace("{vk64}", vk64)) for name, value in credential]
    path = "/v1/chat/completions" if dialect == "openai" else "/v1beta/models/gemini-2.5-flash:generateContent"
    before = pool_health(pooled)
    answer = send(pooled, "POST", path, headers + [("Content-Type", "application/json")],
                  CHAT if dialect == "openai" else PROMPT)
    assert_dialect(answer, 401, dialect)
    assert_no_upstream_call(pooled)
    assert pool_health(pooled) == before


def test_a_host_header_of_the_clients_choice_is_not_forwarded(pooled):
    headers = [("Host", "evil.example")] + auth_for(pooled, "google")
    answer = send(pooled, "POST", TARGETS[0][1], headers, PROMPT, skip_host=True)
    assert answer.status == 200
    record = only_call(pooled)
    assert record.headers["host"] == pooled.fake.base_url.removeprefix("http://")
    assert_clean_upstream_call(pooled, record, TARGETS[0][2])


@pytest.mark.parametrize("value", [b"genai\x01evil", b"genai\x7f", b"genai\x00", b"genai\x1b[31m"],
                         ids=["soh", "del", "nul", "escape"])
@pytest.mark.parametrize("header", [b"x-goog-api-client", b"User-Agent"])
def test_control_characters_in_identification_headers_never_reach_the_upstream(pooled, header, value):
    """Refused (by gunicorn's parser, before the app, or by the Vault) or dropped; never forwarded."""
    before = pool_health(pooled)
    body = PROMPT_BYTES
    raw = (b"POST /v1beta/models/gemini-2.5-flash:generateContent HTTP/1.1\r\nHost: vault\r\n"
           + f"x-goog-api-key: {pooled.vault_key}\r\nContent-Type: application/json\r\n".encode()
           + header + b": " + value + b"\r\n" + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
           + body)
    answer = send_bytes(pooled, raw)
    if pooled.fake.calls:
        assert answer.status == 200
        record = only_call(pooled)
        assert_clean_upstream_call(pooled, record, TARGETS[0][2])
        assert value.decode("latin-1") not in str(record.raw_headers)
    else:
        assert answer.status == 400
    assert pool_health(pooled) == before


PROMPT_BYTES = b'{"contents": [{"role": "user", "parts": [{"text": "Say hi"}]}]}'
SECOND = b"GET /v1beta/models HTTP/1.1\r\nHost: vault\r\nx-goog-api-key: %s\r\nConnection: close\r\n\r\n"


@pytest.mark.parametrize("framing", [
    b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: chunked\r\nContent-Length: %d\r\n",
    b"Content-Length: %d\r\nContent-Length: 0\r\n",
    b"Content-Length: %d\r\nTransfer-Encoding: xchunked\r\n",
    b"Content-Length: %d\r\nTransfer-Encoding:  chunked\r\nTransfer-Encoding: identity\r\n",
    b"Content-Length: %d\r\nTransfer-Encoding: chunked, identity\r\n",
], ids=["CL.TE", "TE.CL", "CL.CL", "xchunked", "TE.TE", "chunked-identity"])
def test_conflicting_framing_does_not_smuggle_a_second_request(pooled, framing):
    """A body that is also a request: refused, and the hidden request never reaches the upstream."""
    hidden = b"0\r\n\r\n" + SECOND % pooled.vault_key.encode()
    raw = (b"POST /v1beta/models/gemini-2.5-flash:countTokens HTTP/1.1\r\nHost: vault\r\n"
           + f"x-goog-api-key: {pooled.vault_key}\r\nContent-Type: application/json\r\n".encode()
           + framing.replace(b"%d", str(len(hidden)).encode()) + b"\r\n" + hidden)
    before = pool_health(pooled)
    with socket.create_connection(address_of(pooled), timeout=10) as sock:
        sock.sendall(raw)
        everything = read_until_closed(sock)  # the server answers what it parsed, then closes
    answer = parse_response(everything)
    assert 400 <= answer.status < 500 or answer.status == 501, everything[:300]
    assert everything.count(b"HTTP/1.1 ") == 1, "the hidden request got an answer of its own"
    assert pooled.fake.calls == [], "a request with conflicting framing reached the upstream"
    assert pool_health(pooled) == before
