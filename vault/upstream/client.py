"""HTTP to the upstream: one pooled `requests` adapter per worker, streamed, with timeouts.

The request is built here, complete, and handed to the adapter: a `Session` would re-parse
the URL, merge settings, cookies and environment proxies on every call, none of which the
Vault uses (its URLs are made from allow-listed, already encoded parts).

Egress: a key with its own proxy (`PoolKey.proxy_url`, HTTP(S) or SOCKS5) sends through an
adapter of its own, one per distinct proxy, so each proxy has its own connection pool. Every
other call takes the default egress: the environment's `HTTPS_PROXY` / `HTTP_PROXY` /
`ALL_PROXY`, unless `NO_PROXY` names the upstream's host -- read once, when the client is
built (a `Session` would re-read them per call; the adapter alone ignores them).

The upstream key travels only in a header (`x-goog-api-key` on native paths,
`Authorization: Bearer` on OpenAI-compatible ones), never in the URL, which ends up in logs.
The request's other headers are built by the proxy from an allow-list (`vault.proxy.translate`).
"""

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_environ_proxies

READ_SIZE = 64 * 1024

# The Vault's own X-Request-Id identifies the request; the upstream's ids travel under their own names.
RELAYED_RESPONSE_HEADERS = {"content-type", "x-goog-request-id", "request-id", "server-timing"}


@dataclass(frozen=True)
class UpstreamRequest:
    """A client request, translated for the upstream (without any key)."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes | Iterable[bytes]  # an iterable only for an upload, streamed with its own Content-Length
    bearer_auth: bool
    model: str
    streaming: bool
    dialect: str
    extras: dict = field(default_factory=dict)


def relayable_headers(headers) -> dict[str, str]:
    """The upstream's response headers worth passing to the client."""
    return {name: value for name, value in headers.items() if name.lower() in RELAYED_RESPONSE_HEADERS}


def environment_proxies(url: str) -> dict[str, str]:
    """The proxies the environment sets for `url` (`*_PROXY`, any case), or {} when `NO_PROXY` bypasses it."""
    return {scheme: proxy for scheme, proxy in get_environ_proxies(url).items() if scheme != "no"}


def proxy_map(proxy_url: str) -> dict[str, str]:
    """`proxies` for `HTTPAdapter.send`: every upstream URL through `proxy_url`."""
    return {"http": proxy_url, "https": proxy_url}


class UpstreamClient:
    """Sends requests to `base_url` over a connection pool sized for many open streams.

    `default_proxies` is the egress of keys without a proxy of their own (None: the environment's).
    """

    def __init__(self, base_url: str, connect_timeout: float, read_timeout: float, pool_size: int,
                 default_proxies: dict[str, str] | None = None):
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.default_proxies = environment_proxies(self.base_url) if default_proxies is None else default_proxies
        self._pool_size = pool_size
        self._adapter = self._new_adapter()
        self._proxied: dict[str, HTTPAdapter] = {}
        self._lock = threading.Lock()

    def _new_adapter(self) -> HTTPAdapter:
        return HTTPAdapter(pool_connections=4, pool_maxsize=self._pool_size, max_retries=0)

    def send(self, request: UpstreamRequest, secret: str, proxy_url: str | None = None) -> requests.Response:
        """Open the upstream response (headers read, body not yet) with `secret` attached, through
        `proxy_url` if the key has one."""
        # Ask for identity encoding: bytes are relayed as they arrive, never re-compressed.
        headers = {"Accept-Encoding": "identity", **request.headers}
        if request.bearer_auth:
            headers["Authorization"] = f"Bearer {secret}"
        else:
            headers["x-goog-api-key"] = secret
        if isinstance(request.body, bytes) and request.body:
            headers["Content-Length"] = str(len(request.body))  # a streamed body (an upload) brings its own
        url = self.base_url + request.path + ("?" + urlencode(request.query) if request.query else "")
        return self._send(prepare(request.method, url, headers, request.body or None), proxy_url)

    def send_upload(self, url: str, headers: dict[str, str], body: Iterable[bytes] | None,
                    proxy_url: str | None = None) -> requests.Response:
        """POST an upload's bytes (streamed, `Content-Length` in `headers`) to the upload URL the
        upstream gave, through the proxy of the key holding the upload; that URL is its own
        credential, so no key is attached."""
        return self._send(prepare("POST", url, {"Accept-Encoding": "identity", **headers}, body), proxy_url)

    def _send(self, prepared: requests.PreparedRequest, proxy_url: str | None) -> requests.Response:
        if proxy_url is None:
            return self._adapter.send(prepared, stream=True, timeout=self.timeout, proxies=self.default_proxies)
        return self._adapter_for(proxy_url).send(prepared, stream=True, timeout=self.timeout,
                                                 proxies=proxy_map(proxy_url))

    def _adapter_for(self, proxy_url: str) -> HTTPAdapter:
        """The adapter (and so the connection pool) of one proxy, made on its first use."""
        with self._lock:
            adapter = self._proxied.get(proxy_url)
            if adapter is None:
                adapter = self._proxied[proxy_url] = self._new_adapter()
            return adapter

    def upstream_url(self, url: str) -> bool:
        """Whether `url` points at this client's upstream (scheme and host), e.g. an upload URL it returned."""
        base, other = urlsplit(self.base_url), urlsplit(url)
        return (base.scheme, base.netloc) == (other.scheme, other.netloc) and other.path.startswith("/upload/")

    def close(self) -> None:
        """Close every pooled connection, direct and through proxies."""
        with self._lock:
            adapters, self._proxied = [self._adapter, *self._proxied.values()], {}
        for adapter in adapters:
            adapter.close()


def prepare(method: str, url: str, headers: dict[str, str], body) -> requests.PreparedRequest:
    """A request ready for an adapter, built as it is (no URL re-parsing, no merged settings)."""
    prepared = requests.PreparedRequest()
    prepared.method = method
    prepared.url = url
    prepared.headers = CaseInsensitiveDict(headers)
    prepared.body = body
    prepared.hooks = {"response": []}
    return prepared


def iter_body(response: requests.Response) -> Iterator[bytes]:
    """The response body in pieces as they arrive (no waiting to fill a buffer)."""
    raw = response.raw
    while True:
        piece = raw.read1(READ_SIZE)
        if not piece:
            return
        yield piece


def read_limited(response: requests.Response, limit: int = 1024 * 1024) -> bytes:
    """Up to `limit` bytes of a (short) response body, e.g. an error envelope."""
    chunks, size = [], 0
    for piece in iter_body(response):
        chunks.append(piece)
        size += len(piece)
        if size >= limit:
            break
    return b"".join(chunks)
