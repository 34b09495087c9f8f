"""Egress per upstream key against a real server: an admin gives a key an HTTP or SOCKS5 proxy and every
call with that key (generate, stream, upload chunks) goes through it; the environment's proxy is the
default egress, `NO_PROXY` bypasses it; a proxy that is down fails over like any connection failure."""

import http.client
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests

from tests.egress_proxies import HttpProxy, Socks5Proxy

MODEL = "gemini-2.5-flash"
GENERATE = f"/v1beta/models/{MODEL}:generateContent"
STREAM = f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
PROMPT = {"contents": [{"role": "user", "parts": [{"text": "Say hi"}]}]}
PASSWORD = "pr0xy-s3cret"


@pytest.fixture
def http_proxy() -> Iterator[HttpProxy]:
    with HttpProxy(credentials=("alice", PASSWORD)) as proxy:
        yield proxy


@pytest.fixture
def socks_proxy() -> Iterator[Socks5Proxy]:
    with Socks5Proxy(credentials=("bob", PASSWORD)) as proxy:
        yield proxy


def call(stack, path: str = GENERATE) -> requests.Response:
    response = requests.post(stack.base_url + path, json=PROMPT, headers={"x-goog-api-key": stack.vault_key},
                             timeout=30)
    assert response.status_code == 200, response.text
    return response


def key_id(stack, upstream_key: str) -> int:
    masked = f"{upstream_key[:4]}…{upstream_key[-4:]}"
    return next(key["id"] for key in stack.pool() if key["key"] == masked)


def patch(stack, upstream_key: str, body: dict) -> requests.Response:
    return requests.patch(f"{stack.base_url}/admin/api/upstream-keys/{key_id(stack, upstream_key)}", json=body,
                          headers=stack.admin(), timeout=10)


def upload(stack, data: bytes = b"hello, proxied world") -> None:
    """A resumable upload: start (through the pool), then one chunk to the upload URL."""
    start = requests.post(stack.base_url + "/upload/v1beta/files", data=b"", timeout=30, headers={
        "x-goog-api-key": stack.vault_key, "X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start",
        "X-Goog-Upload-Header-Content-Length": str(len(data)),
        "X-Goog-Upload-Header-Content-Type": "text/plain"})
    target = urlsplit(start.headers["X-Goog-Upload-URL"])
    connection = http.client.HTTPConnection(stack.base_url.removeprefix("http://"), timeout=30)
    connection.request("POST", f"{target.path}?{target.query}", body=data, headers={
        "X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0", "Content-Length": str(len(data))})
    answer = connection.getresponse()
    answer.read()
    connection.close()
    assert answer.status == 200 and answer.getheader("X-Goog-Upload-Status") == "final"


def keys_called(stack) -> list[str]:
    return [request.key for request in stack.fake.calls if request.key]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_key_with_an_http_proxy_sends_everything_through_it(own_stack, http_proxy, backend):
    stack = own_stack(key_count=2, backend=backend)
    proxied, direct = stack.upstream_keys
    answer = patch(stack, proxied, {"proxy_url": http_proxy.url("alice", PASSWORD)})
    assert answer.status_code == 200 and answer.json()["proxy"] == f"http://alice:***@127.0.0.1:{http_proxy.port}"
    assert patch(stack, direct, {"state": "disabled"}).status_code == 200
    call(stack)
    call(stack, STREAM)
    upload(stack)
    lines = http_proxy.request_lines()
    assert [target.removeprefix(stack.fake.base_url) for _, target in lines][:3] == [
        GENERATE, STREAM, "/upload/v1beta/files"]
    assert len(lines) == 4 and "upload_id=" in lines[3][1], "the chunk went through it too"
    assert patch(stack, direct, {"state": "active"}).status_code == 200
    for _ in range(4):
        call(stack)
    assert keys_called(stack).count(direct) == 2
    assert http_proxy.api_keys() == [key for key in keys_called(stack) if key == proxied]
    assert {(relay.user, relay.password) for relay in http_proxy.relays} == {("alice", PASSWORD)}
    listed = requests.get(f"{stack.base_url}/admin/api/upstream-keys", headers=stack.admin(), timeout=10).text
    assert PASSWORD not in listed and PASSWORD not in answer.text
    assert PASSWORD not in stack.server.log()


def test_a_socks5_key_goes_through_it_until_its_proxy_is_cleared(own_stack, socks_proxy):
    stack = own_stack(key_count=2)
    proxied, direct = stack.upstream_keys
    assert patch(stack, proxied, {"proxy_url": socks_proxy.url("bob", PASSWORD).replace("socks5", "socks5h")}
                 ).json()["proxy"] == f"socks5h://bob:***@127.0.0.1:{socks_proxy.port}"
    for path in (GENERATE, STREAM, GENERATE, STREAM):
        call(stack, path)
    assert socks_proxy.api_keys() == [proxied, proxied]
    assert {relay.target for relay in socks_proxy.relays} == {f"127.0.0.1:{stack.fake.port}"}
    cleared = patch(stack, proxied, {"proxy_url": None})
    assert cleared.status_code == 200 and cleared.json()["proxy"] is None
    stack.fake.reset()
    for _ in range(4):
        call(stack)
    assert sorted(keys_called(stack)) == sorted([proxied, direct] * 2)
    assert socks_proxy.api_keys() == [proxied, proxied], "direct again"
    assert PASSWORD not in stack.server.log()


INVALID = [
    {"proxy_url": "ftp://alice:leaked@127.0.0.1:21"}, {"proxy_url": "http://127.0.0.1:3128/path"},
    {"proxy_url": "127.0.0.1:3128"}, {"proxy_url": 3128}, {"proxy_url": "http://127.0.0.1:3128", "label": 7},
]


def test_an_invalid_proxy_is_400_and_changes_nothing(own_stack):
    stack = own_stack(key_count=1)
    before = stack.pool()
    for body in INVALID:
        refused = patch(stack, stack.upstream_keys[0], body)
        assert refused.status_code == 400 and "leaked" not in refused.text, body
    assert stack.pool() == before


def test_a_proxy_that_is_down_fails_over_and_the_key_stays_in_the_pool(own_stack):
    stack = own_stack(key_count=2)
    dead, healthy = stack.upstream_keys
    gone = HttpProxy().start()
    url = gone.url()
    gone.stop()
    assert patch(stack, dead, {"proxy_url": url}).status_code == 200
    for _ in range(3):
        call(stack)
    assert set(keys_called(stack)) == {healthy}
    state = next(key for key in stack.pool() if key["id"] == key_id(stack, dead))
    assert state["state"] == "active" and "unreachable" in state["last_error"]


def test_the_environment_s_proxy_is_the_default_egress(own_stack, http_proxy):
    stack = own_stack(key_count=1, HTTP_PROXY=http_proxy.url("alice", PASSWORD))
    call(stack)
    call(stack, STREAM)
    assert http_proxy.api_keys() == stack.upstream_keys * 2
    assert stack.pool()[0]["proxy"] is None, "the default egress is no key's own proxy"


def test_no_proxy_bypasses_the_environment_s_proxy(own_stack, http_proxy):
    stack = own_stack(key_count=1, http_proxy=http_proxy.url("alice", PASSWORD), NO_PROXY="localhost,127.0.0.1")
    call(stack)
    assert keys_called(stack) == stack.upstream_keys and http_proxy.relays == []
