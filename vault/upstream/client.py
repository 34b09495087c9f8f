"""HTTP to the upstream: one pooled `requests` adapter per worker, streamed, with timeouts.

The request is built here, complete, and handed to the adapter: a `Session` would re-parse
the URL, merge settings, cookies and environment proxies on every call, none of which the
Vault uses (its URLs are made from allow-listed, already encoded parts).

The upstream key travels only in a header (`x-goog-api-key` on native paths,
`Authorization: Bearer` on OpenAI-compatible ones), never in the URL, which ends up in logs.
The request's other headers are built by the proxy from an allow-list (`vault.proxy.translate`).
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

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


class UpstreamClient:
    """Sends requests to `base_url` over a connection pool sized for many open streams."""

    def __init__(self, base_url: str, connect_timeout: float, read_timeout: float, pool_size: int):
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self._adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)

    def send(self, request: UpstreamRequest, secret: str) -> requests.Response:
        """Open the upstream response (headers read, body not yet) with `secret` attached."""
        # Ask for identity encoding: bytes are relayed as they arrive, never re-compressed.
        headers = {"Accept-Encoding": "identity", **request.headers}
        if request.bearer_auth:
            headers["Authorization"] = f"Bearer {secret}"
        else:
            headers["x-goog-api-key"] = secret
        if isinstance(request.body, bytes) and request.body:
            headers["Content-Length"] = str(len(request.body))  # a streamed body (an upload) brings its own
        prepared = requests.PreparedRequest()
        prepared.method = request.method
        prepared.url = self.base_url + request.path + ("?" + urlencode(request.query) if request.query else "")
        prepared.headers = CaseInsensitiveDict(headers)
        prepared.body = request.body or None
        prepared.hooks = {"response": []}
        return self._adapter.send(prepared, stream=True, timeout=self.timeout)

    def send_upload(self, url: str, headers: dict[str, str], body: Iterable[bytes] | None) -> requests.Response:
        """POST an upload's bytes (streamed, `Content-Length` in `headers`) to the upload URL the
        upstream gave; that URL is its own credential, so no key is attached."""
        prepared = requests.PreparedRequest()
        prepared.method = "POST"
        prepared.url = url
        prepared.headers = CaseInsensitiveDict({"Accept-Encoding": "identity", **headers})
        prepared.body = body
        prepared.hooks = {"response": []}
        return self._adapter.send(prepared, stream=True, timeout=self.timeout)

    def upstream_url(self, url: str) -> bool:
        """Whether `url` points at this client's upstream (scheme and host), e.g. an upload URL it returned."""
        base, other = urlsplit(self.base_url), urlsplit(url)
        return (base.scheme, base.netloc) == (other.scheme, other.netloc) and other.path.startswith("/upload/")

    def close(self) -> None:
        """Close every pooled connection."""
        self._adapter.close()


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
