"""Class 7 -- bad input, on both proxy dialects and the JSON API: a clear 4xx, never a 500, nothing changed.

Bodies nested 10,000 deep, not UTF-8, not JSON, declared as something else, too large
(chunked, or announced) and too slow; model ids that are not model ids. Every refusal is
in the caller's dialect, the upstream gets nothing, and neither the user's money, keys nor
the user table move (usage records only where the request was authenticated first).
"""

import select
import socket
import time

import pytest
import requests

from tests.e2e.hostile.conftest import BODY_DEADLINE, BODY_LIMIT
from tests.e2e.hostile.probe import (
    MODEL,
    PROMPT,
    address_of,
    assert_dialect,
    assert_no_upstream_call,
    auth_for,
    dialect_of,
    parse_response,
    pool_health,
    read_until_closed,
    send,
)

# (path, dialect of its errors, how it authenticates: "google", "openai", "jwt" or None)
DOORS = [
    (f"/v1beta/models/{MODEL}:generateContent", "google", "google"),
    (f"/v1/models/{MODEL}:countTokens", "google", "google"),
    ("/v1/chat/completions", "openai", "openai"),
    ("/v1beta/openai/embeddings", "openai", "openai"),
    ("/auth/users/", "api", None),
    ("/auth/token", "api", None),
    ("/api-keys/", "api", "jwt"),
]
DEEP = 10_000
BODIES = {
    "arrays-10000-deep": b"[" * DEEP + b"]" * DEEP,
    "objects-10000-deep": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    "contents-10000-deep": b'{"contents":' + b"[" * DEEP + b"]" * DEEP + b"}",
    "unclosed-10000-deep": b"[" * DEEP,
    "objects-101-deep": b'{"a":' * 101 + b"1" + b"}" * 101,
    "utf16-bom": '{"contents": [{"parts": [{"text": "hi"}]}], "email": "a@b.c"}'.encode("utf-16"),
    "utf16-le": '{"contents": [], "email": "a@b.c"}'.encode("utf-16-le"),
    "utf32": '{"contents": []}'.encode("utf-32"),
    "latin1": '{"contents": [{"parts": [{"text": "café"}]}], "email": "é@b.c", "password": "passwördd"}'.encode(
        "latin-1"),
    "utf8-bom": b"\xef\xbb\xbf" + b'{"contents": [], "email": "a@b.c", "password": "long enough"}',
    "overlong-utf8": b'{"contents": "\xc0\xa2", "email": "\xc0\xae@b.c"}',
    "nan": b'{"contents": NaN, "email": "a@b.c", "password": Infinity}',
    "trailing-garbage": b'{"contents": []} x',
    "not-an-object": b'[{"contents": []}]',
    "a-string": b'"contents"',
    "null": b"null",
    "truncated": b'{"contents": [',
}


def headers_for(stack, auth: str | None, content_type: str | None = "application/json") -> list[tuple[str, str]]:
    headers = [] if content_type is None else [("Content-Type", content_type)]
    if auth == "jwt":
        return headers + [("Authorization", f"Bearer {stack.user_token}")]
    if auth:
        return headers + auth_for(stack, auth, json_body=False)
    return headers


def state(stack) -> dict:
    """What bad input must not change: the user's money and counters, their keys, the user table."""
    user = {"Authorization": f"Bearer {stack.user_token}"}
    me = requests.get(f"{stack.base_url}/auth/users/me", headers=user, timeout=10).json()
    keys = requests.get(f"{stack.base_url}/api-keys/", headers=user, timeout=10).json()
    users = requests.get(f"{stack.base_url}/admin/api/users", headers=stack.admin(), timeout=10).json()
    usage = requests.get(f"{stack.base_url}/admin/api/usage", headers=stack.admin(), timeout=10).json()
    return {"balance": me["balance_nano_usd"], "spend": me["spend_nano_usd"], "tokens": me["total_tokens"],
            "requests": me["request_count"], "keys": len(keys), "users": [u["email"] for u in users],
            "usage": usage["total"]}


def assert_unchanged(stack, before: dict, after: dict, path: str) -> None:
    """Proxied requests are authenticated before their body is read: they may leave a usage record."""
    if path.startswith("/v1"):
        before, after = ({k: v for k, v in s.items() if k not in ("usage", "requests")} for s in (before, after))
    assert after == before


def refused_everywhere(stack, body: bytes, status, content_type="application/json", doors=DOORS):
    before, pool = state(stack), pool_health(stack)
    for path, dialect, auth in doors:
        answer = send(stack, "POST", path, headers_for(stack, auth, content_type), body)
        assert_dialect(answer, status, dialect)
        assert_no_upstream_call(stack)
    assert_unchanged(stack, before, state(stack), "/v1")
    assert pool_health(stack) == pool


@pytest.mark.parametrize("body", list(BODIES.values()), ids=list(BODIES))
def test_bodies_that_are_not_plain_utf8_json_objects_are_400(stack, body):
    refused_everywhere(stack, body, 400)


@pytest.mark.parametrize("content_type", [
    "text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
    "application/json; charset=utf-16", "application/json; charset=latin-1", "application/jsonx", "text/json", None,
])
def test_a_body_not_declared_as_utf8_json_is_415(stack, content_type):
    doors = [door for door in DOORS if not (door[0] == "/auth/token" and content_type and "form" in content_type)]
    refused_everywhere(stack, b'{"contents": [], "email": "a@b.c", "password": "long enough"}', 415,
                       content_type, doors)


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1beta/openai/chat/completions", "/v1/embeddings"])
@pytest.mark.parametrize("model", [
    f"{MODEL}\n", f"models/{MODEL}\n", f"{MODEL}\r\n", f"{MODEL}/../../files", "../files", "gemini 2.5", "",
    "g" * 129, f"{MODEL}%0A", f"{MODEL}?key=x", f"{MODEL}#x", "\u0435mbedding", 12, None, ["x"],
], ids=lambda model: repr(model)[:40])
def test_a_model_id_that_is_not_a_model_id_is_400_before_the_upstream(stack, path, model):
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "input": ["hi"]}
    before, pool = state(stack), pool_health(stack)
    answer = send(stack, "POST", path, auth_for(stack, "openai"), body)
    assert_dialect(answer, 400, "openai")
    assert_no_upstream_call(stack)
    assert_unchanged(stack, before, state(stack), path)
    assert pool_health(stack) == pool


def test_a_bearer_caller_of_a_native_v1_method_hears_one_dialect(stack):
    """The Vault's own refusal and the upstream's on the same path come in the same envelope."""
    headers = auth_for(stack, "openai")
    vault_refusal = send(stack, "POST", f"/v1/models/{MODEL}:generateContent", headers, b'{"contents": [')
    upstream_refusal = send(stack, "POST", "/v1/models/gemini-nope:generateContent", headers, PROMPT)
    assert vault_refusal.status == 400 and upstream_refusal.status == 404
    assert len(stack.fake.calls) == 1
    assert dialect_of(vault_refusal) == dialect_of(upstream_refusal), (vault_refusal.body, upstream_refusal.body)


# --- size and time limits, on the private `limited` Vault ------------------------------------

def raw_head(stack, path: str, auth: str | None, framing: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: vault", "Content-Type: application/json", framing]
    lines += [f"{name}: {value}" for name, value in headers_for(stack, auth, None)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.parametrize("door", DOORS, ids=lambda door: door[0])
def test_a_chunked_body_over_the_limit_is_413(limited, door):
    path, dialect, auth = door
    before = state(limited)
    with socket.create_connection(address_of(limited), timeout=10) as sock:
        sock.sendall(raw_head(limited, path, auth, "Transfer-Encoding: chunked"))
        piece = b"[" + b" " * (16 * 1024 - 2) + b"]"
        try:
            for _ in range(BODY_LIMIT // len(piece) + 2):
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may stop reading as soon as the limit is passed
        answer = parse_response(read_until_closed(sock))
    assert_dialect(answer, 413, dialect)
    assert_no_upstream_call(limited)
    assert_unchanged(limited, before, state(limited), path)


@pytest.mark.parametrize("door", DOORS, ids=lambda door: door[0])
def test_an_announced_body_over_the_limit_is_413_before_it_is_sent(limited, door):
    path, dialect, auth = door
    with socket.create_connection(address_of(limited), timeout=10) as sock:
        sock.sendall(raw_head(limited, path, auth, f"Content-Length: {BODY_LIMIT + 1}"))
        answer = parse_response(read_until_closed(sock))
    assert_dialect(answer, 413, dialect)
    assert_no_upstream_call(limited)


def test_slow_bodies_get_408_and_a_closed_connection_while_the_server_stays_responsive(limited):
    """Five uploads trickle; /healthz answers at once meanwhile; each upload then gets 408 and EOF."""
    before = state(limited)
    started = time.monotonic()
    slow = []
    for path, dialect, auth in DOORS[:5]:
        sock = socket.create_connection(address_of(limited), timeout=BODY_DEADLINE + 8)
        sock.sendall(raw_head(limited, path, auth, "Content-Length: 1000") + b'{"contents": [')
        slow.append((sock, dialect))
    try:
        asked = time.monotonic()
        health = requests.get(f"{limited.base_url}/healthz", timeout=BODY_DEADLINE)
        assert health.status_code == 200 and time.monotonic() - asked < 1.0
        readable, _, _ = select.select([sock for sock, _ in slow], [], [], 0)
        assert readable == [], "an upload was answered before its deadline"
        for sock, dialect in slow:
            answer = parse_response(read_until_closed(sock))  # socket.timeout if the server never closes
            assert_dialect(answer, 408, dialect)
        assert time.monotonic() - started >= BODY_DEADLINE * 0.9
    finally:
        for sock, _ in slow:
            sock.close()
    assert_no_upstream_call(limited)
    assert_unchanged(limited, before, state(limited), "/v1")
