"""Each upstream key's egress: the proxy URL an admin gave it, checked, and the only form it is shown in.

A key may send all its traffic through its own HTTP, HTTPS or SOCKS5 proxy (`socks5h`:
the proxy resolves host names). The URL is stored encrypted like the key, because it may
carry a password; it becomes text only through `mask_proxy_url`, which drops the password.
Keys without a proxy use the default egress: the environment's `HTTPS_PROXY` /
`HTTP_PROXY` / `NO_PROXY`, read once by `vault.upstream.client`.
"""

from urllib.parse import SplitResult, urlsplit

from vault.errors import ValidationFailed

PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
MAX_PROXY_URL = 2048


def check_proxy_url(url: str) -> str:
    """Return `url` trimmed, or raise `ValidationFailed` saying why it cannot be a proxy URL.

    Accepted: `scheme://[user[:password]@]host[:port][/]` with one of `PROXY_SCHEMES`.
    The message never repeats the URL (it may hold a password).
    """
    candidate = url.strip()
    problem = proxy_url_problem(candidate)
    if problem:
        raise ValidationFailed(fields={"proxy_url": problem})
    return candidate


def proxy_url_problem(url: str) -> str | None:
    """What is wrong with `url` as a proxy URL, or None."""
    if not url or len(url) > MAX_PROXY_URL or any(char.isspace() or ord(char) < 32 for char in url):
        return f"Give a URL of at most {MAX_PROXY_URL} characters without spaces."
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (a port that is not a number raises here)
    except ValueError:
        return "Not a valid URL (check the port)."
    if parts.scheme.lower() not in PROXY_SCHEMES:
        return "The scheme must be http, https, socks5 or socks5h."
    if not parts.hostname:
        return "The URL must name the proxy's host."
    if parts.path not in ("", "/") or parts.query or parts.fragment or url.endswith(("?", "#")):
        return "A proxy URL has no path, query or fragment."
    return None


def mask_proxy_url(url: str | None) -> str | None:
    """`scheme://[user:***@]host[:port]`: the proxy as it may be shown (never its password)."""
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{userinfo(parts)}{host_port(parts)}"


def userinfo(parts: SplitResult) -> str:
    """The user name with any password replaced by `***`, and the `@`; empty without credentials."""
    if parts.username is None:
        return ""
    return f"{parts.username}:***@" if parts.password is not None else f"{parts.username}@"


def host_port(parts: SplitResult) -> str:
    """`host[:port]`, an IPv6 host in brackets."""
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{parts.port}" if parts.port is not None else host
