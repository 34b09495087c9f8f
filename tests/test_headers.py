"""Security headers, cookie flags, and the client address behind (only) trusted proxies."""

import re

import pytest
from flask import Flask, request

from tests.conftest import DEFAULT_PASSWORD, app_config
from tests.test_config import REAL_SECRETS
from tests.test_pages import csrf_token, log_in
from vault import create_app
from vault.config import ConfigError
from vault.headers import CONTENT_SECURITY_POLICY, TrustedProxyFix

PAGES = ["/login", "/register", "/docs"]
JSON_API = [("get", "/auth/users/me"), ("get", "/api-keys/"), ("get", "/admin/api/users"),
            ("post", "/auth/users/"), ("post", "/auth/token")]
PROXY = [("get", "/v1/models"), ("get", "/v1beta/models"), ("post", "/v1/chat/completions"),
         ("post", "/v1beta/models/gemini-2.5-flash:generateContent"),
         ("post", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"),
         ("get", "/v1beta/openai/models")]


def directives(policy: str) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in policy.split(";"))


@pytest.mark.parametrize("path", PAGES)
def test_pages_forbid_framing_inline_scripts_and_sniffing(client, path):
    response = client.get(path)
    assert response.status_code == 200 and response.mimetype == "text/html"
    policy = directives(response.headers["Content-Security-Policy"])
    assert policy["frame-ancestors"] == "'none'" and policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'" and policy["object-src"] == "'none'"
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert "unsafe-eval" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "no-store" not in response.headers.get("Cache-Control", "")


@pytest.mark.parametrize("path", PAGES)
def test_pages_have_no_inline_script_style_or_handlers(client, path):
    html = client.get(path).get_data(as_text=True)
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script>"
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"\son[a-z]+=", html), "inline event handler"


def test_error_pages_and_redirects_carry_the_policy_too(client):
    for response in (client.get("/no-such-page"), client.get("/dashboard")):
        assert response.status_code in (302, 404)
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_logged_in_pages_are_not_stored(app, make_user):
    make_user(email="ada@example.com")
    browser = app.test_client()
    log_in(browser, "ada@example.com")
    page = browser.get("/dashboard")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    created = browser.post("/dashboard/keys", data={"name": "laptop", "csrf_token": csrf_token(browser, "/dashboard")})
    assert created.status_code == 201 and created.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(("method", "path"), JSON_API + PROXY)
def test_api_and_proxy_answers_are_never_stored(client, method, path):
    response = getattr(client, method)(path, json={})
    assert response.status_code in (400, 401, 403)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in response.headers


def test_authenticated_json_answers_are_never_stored(client, make_user, auth_headers):
    response = client.get("/auth/users/me", headers=auth_headers(make_user()))
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    token = client.post("/auth/token", json={"email": "user1@example.com", "password": DEFAULT_PASSWORD})
    assert token.status_code == 200 and token.headers["Cache-Control"] == "no-store"


def test_static_files_and_probes_say_nosniff(client):
    for path in ("/static/js/app.js", "/static/css/app.css", "/static/js/docs.js", "/healthz", "/openapi.json"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert response.headers.get("Cache-Control") != "no-store", path


def test_the_policy_allows_what_the_docs_page_loads(client):
    html = client.get("/docs").get_data(as_text=True)
    for src in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert src.startswith("/") or src == "data:,", src
    assert "data:" in directives(CONTENT_SECURITY_POLICY)["img-src"]  # Swagger UI's icons


def test_remember_cookie_is_httponly_and_samesite(app, make_user):
    make_user(email="ada@example.com")
    browser = app.test_client()
    response = browser.post("/login", data={"email": "ada@example.com", "password": DEFAULT_PASSWORD,
                                            "remember": "y", "csrf_token": csrf_token(browser, "/login")})
    assert response.status_code == 302
    cookies = {value.split("=", 1)[0]: value for value in response.headers.getlist("Set-Cookie")}
    remember = cookies["remember_token"]
    assert "HttpOnly" in remember and "SameSite=Lax" in remember and "Secure" not in remember
    assert "HttpOnly" in cookies["session"] and "SameSite=Lax" in cookies["session"]


def test_cookies_are_secure_in_production(tmp_path):
    app = create_app({"VAULT_INSTANCE_PATH": str(tmp_path), "VAULT_BOOTSTRAP": False},
                     environ={"VAULT_ENV": "production", **REAL_SECRETS})
    assert app.config["REMEMBER_COOKIE_SECURE"] and app.config["SESSION_COOKIE_SECURE"]
    assert app.config["REMEMBER_COOKIE_SAMESITE"] == "Lax" and app.config["REMEMBER_COOKIE_HTTPONLY"]


# The client address: X-Forwarded-For only from a trusted peer.


def seen_address(trusted, peer: str, forwarded: str | None, hops: int = 1) -> str:
    """The `remote_addr` a view sees when `peer` connects and sends `forwarded`."""
    inner = Flask(__name__)
    inner.add_url_rule("/", "who", lambda: request.remote_addr or "")
    inner.wsgi_app = TrustedProxyFix(inner.wsgi_app, trusted, hops)
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    return inner.test_client().get("/", headers=headers, environ_base={"REMOTE_ADDR": peer}).get_data(as_text=True)


@pytest.mark.parametrize(("trusted", "peer", "forwarded", "seen"), [
    pytest.param(("127.0.0.1",), "127.0.0.1", "203.0.113.7", "203.0.113.7", id="trusted-loopback"),
    pytest.param(("127.0.0.1",), "198.51.100.9", "203.0.113.7", "198.51.100.9", id="untrusted-peer-ignored"),
    pytest.param(("127.0.0.1",), "127.0.0.1", None, "127.0.0.1", id="no-header"),
    pytest.param(("10.0.0.0/8",), "10.20.30.40", "203.0.113.7", "203.0.113.7", id="cidr"),
    pytest.param(("10.0.0.0/8",), "11.0.0.1", "203.0.113.7", "11.0.0.1", id="outside-cidr"),
    pytest.param(("10.0.0.1", "fd00::/8"), "fd00::5", "2001:db8::1", "2001:db8::1", id="ipv6-network"),
    pytest.param(("127.0.0.1",), "::ffff:127.0.0.1", "203.0.113.7", "203.0.113.7", id="ipv4-mapped"),
    pytest.param(("*",), "198.51.100.9", "203.0.113.7", "203.0.113.7", id="anyone"),
    pytest.param(("127.0.0.1",), "", "203.0.113.7", "203.0.113.7", id="unix-socket"),
    pytest.param(("127.0.0.1",), "not-an-ip", "203.0.113.7", "not-an-ip", id="odd-peer"),
    pytest.param(("127.0.0.1",), "127.0.0.1", "6.6.6.6, 203.0.113.7", "203.0.113.7", id="spoofed-left-entry"),
    pytest.param("127.0.0.1, 10.0.0.0/8", "10.1.1.1", "203.0.113.7", "203.0.113.7", id="text-list"),
])
def test_forwarded_for_is_believed_only_from_trusted_peers(trusted, peer, forwarded, seen):
    assert seen_address(trusted, peer, forwarded) == seen


def test_hops_count_the_trusted_proxies_in_a_chain():
    assert seen_address(("127.0.0.1",), "127.0.0.1", "203.0.113.7, 10.0.0.2", hops=2) == "203.0.113.7"
    assert seen_address(("127.0.0.1",), "127.0.0.1", "203.0.113.7, 10.0.0.2", hops=1) == "10.0.0.2"


def test_the_app_uses_the_setting(database_url, tmp_path):
    app = create_app(app_config(tmp_path, DATABASE_URL=database_url, FORWARDED_ALLOW_IPS=("10.0.0.0/8",)),
                     environ={})
    assert isinstance(app.wsgi_app, TrustedProxyFix)
    assert app.wsgi_app.trusts("10.9.8.7") and not app.wsgi_app.trusts("127.0.0.1")


@pytest.mark.parametrize(("environ", "name"), [
    ({"FORWARDED_ALLOW_IPS": "10.0.0.0/8, proxy.example"}, "FORWARDED_ALLOW_IPS"),
    ({"FORWARDED_ALLOW_IPS": "300.1.1.1"}, "FORWARDED_ALLOW_IPS"),
    ({"VAULT_PROXY_HOPS": "0"}, "VAULT_PROXY_HOPS"),
    ({"VAULT_PROXY_HOPS": "two"}, "VAULT_PROXY_HOPS"),
])
def test_bad_proxy_settings_stop_the_start(tmp_path, environ, name):
    with pytest.raises(ConfigError, match=name):
        create_app({"VAULT_INSTANCE_PATH": str(tmp_path), "VAULT_BOOTSTRAP": False}, environ=environ)
