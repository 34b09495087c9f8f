"""Security headers on every answer, and the client's real address behind trusted proxies.

Every answer says `nosniff`; HTML pages also carry a Content-Security-Policy that allows
only this site's own scripts, styles and images and forbids framing (with
`X-Frame-Options` for old browsers) and a same-origin `Referrer-Policy`. Answers of the
JSON API and the proxy, and pages seen while logged in, are `Cache-Control: no-store`.

`X-Forwarded-For` is believed only from a peer listed in `FORWARDED_ALLOW_IPS` (the
variable gunicorn reads too), so the throttles count the real client, and nobody else
can choose the address they are counted under.
"""

import ipaddress
from collections.abc import Callable, Iterable

from flask import Flask, Response, request, session
from werkzeug.middleware.proxy_fix import ProxyFix

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
REFERRER_POLICY = "same-origin"
NO_STORE_PREFIXES = ("/auth/", "/api-keys", "/admin/api/", "/v1/", "/v1beta/", "/upload/")


def add_security_headers(response: Response) -> Response:
    """Set the headers above on `response` (a view's own, more specific choice is kept)."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.mimetype == "text/html":
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", REFERRER_POLICY)
        if "_user_id" in session:  # a logged-in page: balances, keys, a new key shown once
            headers["Cache-Control"] = "no-store"
    if request.path.startswith(NO_STORE_PREFIXES):
        # Streams say `no-cache`; credentials, keys and answers must not be stored at all.
        headers["Cache-Control"] = "no-store"
    return response


WsgiApp = Callable[[dict, Callable], Iterable[bytes]]


class TrustedProxyFix:
    """`ProxyFix` for `X-Forwarded-For`, applied only when the direct peer is a trusted proxy.

    `ProxyFix` alone trusts the last `hops` entries of the header from anyone. Here a peer
    outside `trusted` (addresses, CIDR networks, or `*`) keeps its own address whatever it
    sends. A Unix-socket peer (empty `REMOTE_ADDR`) is trusted, as gunicorn does: only a
    local process can connect there.
    """

    def __init__(self, app: WsgiApp, trusted: Iterable[str] | str, hops: int = 1):
        entries = [entry.strip() for entry in (trusted.split(",") if isinstance(trusted, str) else trusted)]
        self.app = app
        self._fixed = ProxyFix(app, x_for=hops, x_proto=0, x_host=0, x_port=0, x_prefix=0)
        self._anyone = "*" in entries
        self._networks = tuple(ipaddress.ip_network(entry, strict=False) for entry in entries if entry and entry != "*")

    def trusts(self, peer: str | None) -> bool:
        """True if `peer` (a `REMOTE_ADDR`) may tell us who the client is."""
        if peer is None:
            return False
        if self._anyone or peer == "":
            return True
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        if address.version == 6 and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self._networks)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        app = self._fixed if self.trusts(environ.get("REMOTE_ADDR")) else self.app
        return app(environ, start_response)


def install_headers(app: Flask) -> None:
    """Add the security headers to every answer and believe only trusted proxies."""
    app.after_request(add_security_headers)
    app.wsgi_app = TrustedProxyFix(app.wsgi_app, app.config["FORWARDED_ALLOW_IPS"], app.config["VAULT_PROXY_HOPS"])
