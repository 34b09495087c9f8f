"""Egress per upstream key: proxy URLs checked and masked, and the client sending through HTTP and SOCKS5
proxies (each with its own pool), or through the environment's proxy by default."""

from collections.abc import Iterator

import pytest
import requests

from tests.egress_proxies import HttpProxy, Socks5Proxy
from vault import pool
from vault.errors import ValidationFailed
from vault.extensions import db
from vault.pool.egress import check_proxy_url, mask_proxy_url
from vault.pool.encryption import reencrypt_pool
from vault.pool.health import read_snapshot
from vault.pool.rotator import PoolKey
from vault.runtime import runtime
from vault.security import SecretBox
from vault.upstream.client import UpstreamClient, UpstreamRequest, environment_proxies, read_limited

PROMPT = b'{"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}'
GENERATE = "/v1beta/models/gemini-2.5-flash:generateContent"


@pytest.fixture
def http_proxy() -> Iterator[HttpProxy]:
    with HttpProxy() as proxy:
        yield proxy


@pytest.fixture
def socks_proxy() -> Iterator[Socks5Proxy]:
    with Socks5Proxy() as proxy:
        yield proxy


@pytest.fixture
def upstream(fake_gemini) -> Iterator[UpstreamClient]:
    client = UpstreamClient(fake_gemini.base_url, 2, 5, 4, default_proxies={})
    yield client
    client.close()


def generate(client: UpstreamClient, secret: str, proxy_url: str | None = None) -> requests.Response:
    request = UpstreamRequest("POST", GENERATE, [], {"Content-Type": "application/json"}, PROMPT, False,
                              "gemini-2.5-flash", False, "google")
    response = client.send(request, secret, proxy_url)
    read_limited(response)
    response.close()
    return response


@pytest.mark.parametrize("url", [
    "http://proxy.example:3128", "https://proxy.example", "socks5://127.0.0.1:1080", "socks5h://user:pa%40ss@host:1/",
    "HTTP://Proxy.Example:8080", "http://[::1]:3128", "  http://padded.example:3128  ",
])
def test_good_proxy_urls_are_taken(url):
    assert check_proxy_url(url) == url.strip()


@pytest.mark.parametrize("url", [
    "", "proxy.example:3128", "ftp://proxy.example", "socks4://proxy.example:1080", "http://", "http://:3128",
    "http://proxy.example:port", "http://proxy.example:99999", "http://proxy.example/path",
    "http://proxy.example/?q=1", "http://proxy.example#frag", "http://proxy example", "http://x\n.example",
    "http://" + "a" * 2050,
])
def test_bad_proxy_urls_are_refused_without_echoing_them(url):
    with pytest.raises(ValidationFailed) as refused:
        check_proxy_url(url)
    assert "proxy_url" in refused.value.fields
    assert url.strip() not in refused.value.fields["proxy_url"] or not url.strip()


@pytest.mark.parametrize(("url", "shown"), [
    (None, None),
    ("http://proxy.example:3128", "http://proxy.example:3128"),
    ("socks5h://alice:s3cret@proxy.example:1080/", "socks5h://alice:***@proxy.example:1080"),
    ("HTTPS://bob@proxy.example", "https://bob@proxy.example"),
    ("http://u:p%40ss@[::1]:8080", "http://u:***@[::1]:8080"),
])
def test_proxies_are_shown_without_their_password(url, shown):
    assert mask_proxy_url(url) == shown


def test_a_pool_key_never_prints_its_proxy():
    key = PoolKey(1, "AIza-secret", "AIza…cret", "socks5://alice:s3cret@127.0.0.1:1080")
    assert "s3cret" not in repr(key) and "127.0.0.1:1080" not in repr(key)


def test_a_key_with_an_http_proxy_goes_through_it_and_a_key_without_does_not(fake_gemini, upstream, http_proxy):
    proxied, direct = fake_gemini.new_key(), fake_gemini.new_key()
    assert generate(upstream, proxied, http_proxy.url()).status_code == 200
    assert generate(upstream, direct).status_code == 200
    assert generate(upstream, proxied, http_proxy.url()).status_code == 200
    assert http_proxy.request_lines() == [("POST", fake_gemini.base_url + GENERATE)] * 2
    assert http_proxy.api_keys() == [proxied, proxied]
    assert [call.key for call in fake_gemini.calls] == [proxied, direct, proxied]


def test_proxy_credentials_reach_the_http_proxy(fake_gemini, upstream):
    with HttpProxy(credentials=("alice", "p@ss")) as proxy:
        assert generate(upstream, fake_gemini.new_key(), proxy.url("alice", "p%40ss")).status_code == 200
        assert generate(upstream, fake_gemini.new_key(), proxy.url("alice", "wrong")).status_code == 407
    assert [(relay.user, relay.password) for relay in proxy.relays] == [("alice", "p@ss")]
    assert proxy.refused == 1


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
def test_a_key_with_a_socks5_proxy_goes_through_it(fake_gemini, upstream, socks_proxy, scheme):
    proxied, direct = fake_gemini.new_key(), fake_gemini.new_key()
    url = socks_proxy.url().replace("socks5", scheme, 1)
    assert generate(upstream, proxied, url).status_code == 200
    assert generate(upstream, direct).status_code == 200
    assert generate(upstream, proxied, url).status_code == 200
    assert {relay.target for relay in socks_proxy.relays} == {f"127.0.0.1:{fake_gemini.port}"}
    assert socks_proxy.request_lines() == [("POST", GENERATE)] * 2
    assert socks_proxy.api_keys() == [proxied, proxied]


def test_socks5_with_a_user_and_password(fake_gemini, upstream):
    with Socks5Proxy(credentials=("bob", "hunter2")) as proxy:
        assert generate(upstream, fake_gemini.new_key(), proxy.url("bob", "hunter2")).status_code == 200
        with pytest.raises(requests.ConnectionError):
            generate(upstream, fake_gemini.new_key(), proxy.url("bob", "wrong"))
    assert [(relay.user, relay.password) for relay in proxy.relays] == [("bob", "hunter2")]
    assert proxy.refused == 1


def test_each_proxy_has_its_own_pool(fake_gemini, upstream, http_proxy, socks_proxy):
    key = fake_gemini.new_key()
    for proxy_url in (http_proxy.url(), socks_proxy.url(), http_proxy.url()):
        generate(upstream, key, proxy_url)
    assert set(upstream._proxied) == {http_proxy.url(), socks_proxy.url()}
    assert upstream._proxied[http_proxy.url()] is not upstream._adapter


def test_uploads_go_through_the_key_s_proxy(fake_gemini, upstream, http_proxy):
    response = upstream.send_upload(fake_gemini.base_url + "/upload/v1beta/files?upload_id=nope",
                                    {"X-Goog-Upload-Command": "query", "Content-Length": "0"}, None,
                                    http_proxy.url())
    response.close()
    assert http_proxy.request_lines() == [("POST", fake_gemini.base_url + "/upload/v1beta/files?upload_id=nope")]


def test_https_upstreams_are_tunnelled_with_connect(fake_gemini, http_proxy):
    client = UpstreamClient(f"https://127.0.0.1:{fake_gemini.port}", 2, 2, 4, default_proxies={})
    with pytest.raises(requests.RequestException):  # the fake speaks no TLS: the tunnel is what counts
        generate(client, "AIza-key", http_proxy.url())
    client.close()
    assert [(relay.kind, relay.target) for relay in http_proxy.relays] == [
        ("connect", f"127.0.0.1:{fake_gemini.port}")]


def test_a_proxy_that_is_down_is_a_connection_error(fake_gemini, upstream):
    proxy = HttpProxy().start()
    url = proxy.url()
    proxy.stop()
    with pytest.raises(requests.ConnectionError):
        generate(upstream, fake_gemini.new_key(), url)


def test_the_environment_s_proxy_is_the_default_egress(fake_gemini, http_proxy, monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
                 "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", http_proxy.url())
    client = UpstreamClient(fake_gemini.base_url, 2, 5, 4)
    monkeypatch.delenv("HTTP_PROXY")  # read once, when the client was built
    key = fake_gemini.new_key()
    assert generate(client, key).status_code == 200
    assert http_proxy.api_keys() == [key]
    client.close()


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "localhost,127.0.0.1", "*"])
def test_no_proxy_bypasses_the_environment_s_proxy(fake_gemini, http_proxy, monkeypatch, no_proxy):
    monkeypatch.setenv("HTTP_PROXY", http_proxy.url())
    monkeypatch.setenv("NO_PROXY", no_proxy)
    assert environment_proxies(fake_gemini.base_url) == {}
    monkeypatch.setenv("NO_PROXY", "other.example")
    assert environment_proxies(fake_gemini.base_url)["http"] == http_proxy.url()


def test_the_proxy_is_stored_encrypted_read_into_the_pool_and_reencrypted(app):
    box = runtime().secret_box
    key = pool.add_upstream_key(db.session, "AIza" + "P" * 35, box).key
    pool.set_upstream_key_proxy(key, "socks5://alice:s3cret@127.0.0.1:1080", box)
    db.session.commit()
    assert "s3cret" not in key.proxy_url_encrypted
    assert pool.masked_proxy(key, box) == "socks5://alice:***@127.0.0.1:1080"
    assert read_snapshot(db.session, box, 0).keys[0].proxy_url == "socks5://alice:s3cret@127.0.0.1:1080"
    from cryptography.fernet import Fernet

    newer = SecretBox(f"{Fernet.generate_key().decode()},{app.config['VAULT_ENCRYPTION_KEY']}")
    assert reencrypt_pool(db.session, newer).reencrypted == 1
    db.session.refresh(key)
    assert newer.decrypt(key.proxy_url_encrypted) == "socks5://alice:s3cret@127.0.0.1:1080"
    with pytest.raises(ValueError):
        box.decrypt(key.proxy_url_encrypted)  # only the new first key made it


def test_clearing_and_deleting_drop_the_proxy(app):
    box = runtime().secret_box
    key = pool.add_upstream_key(db.session, "AIza" + "Q" * 35, box).key
    pool.set_upstream_key_proxy(key, "http://proxy.example:3128", box)
    pool.set_upstream_key_proxy(key, None, box)
    assert key.proxy_url_encrypted is None and pool.masked_proxy(key, box) is None
    pool.set_upstream_key_proxy(key, "http://u:p@proxy.example:3128", box)
    pool.delete_upstream_key(db.session, key)
    assert key.proxy_url_encrypted is None
