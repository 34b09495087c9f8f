"""The cookie session of the web area, kept off the proxy.

Proxied calls authenticate with a Vault key and never carry the Vault's session cookie, yet
Flask would open (and build a signer for) a session on every request. On the proxy's paths
the session is Flask's null session: nothing is read, signed or set there.
"""

from flask import Flask, Request
from flask.sessions import SecureCookieSessionInterface

PROXY_PREFIXES = ("/v1beta/", "/v1/", "/upload/")


class WebOnlySessionInterface(SecureCookieSessionInterface):
    """Signed-cookie sessions everywhere but on the proxy's paths."""

    def open_session(self, app: Flask, request: Request):
        if request.path.startswith(PROXY_PREFIXES):
            return None  # Flask then uses its null session, which is never saved
        return super().open_session(app, request)


def install_sessions(app: Flask) -> None:
    """Use `WebOnlySessionInterface` for `app`."""
    app.session_interface = WebOnlySessionInterface()
