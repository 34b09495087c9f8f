"""Which credentials a request carries, and what upstream answers for them.

Upstream reads every credential it is given, not just the first: a second key in `?key=`
next to `x-goog-api-key` is checked too, and an `Authorization: Bearer` on a native path is
taken as an OAuth token even when a key header is there. The fake does the same.
"""

from collections.abc import Callable

from tests.fake_gemini import faults
from tests.fake_gemini.faults import Fault

KEY_SOURCES = ("header", "query")


def collect(header_list: list[tuple[str, str]], query: dict[str, list[str]]) -> list[tuple[str, str]]:
    """Every non-empty credential, as (source, value), headers in request order then the query.

    Sources: "header" (`x-goog-api-key`), "query" (`key` or `$key`), "bearer"
    (`Authorization: Bearer`), "authorization" (any other Authorization scheme, whole value),
    "access_token" (the OAuth query parameter).
    """
    found = []
    for name, value in header_list:
        if name == "x-goog-api-key" and value.strip():
            found.append(("header", value.strip()))
        elif name == "authorization" and value.strip():
            scheme, _, token = value.strip().partition(" ")
            if scheme.lower() == "bearer":
                if token.strip():
                    found.append(("bearer", token.strip()))
            else:
                found.append(("authorization", value.strip()))
    for name, source in (("key", "query"), ("$key", "query"), ("access_token", "access_token")):
        found += [(source, v) for v in query.get(name, []) if v]
    return found


def authenticate(credentials: list[tuple[str, str]], dialect: str,
                 key_valid: Callable[[str | None], bool]) -> tuple[str | None, str | None, Fault | None]:
    """(key, its source, fault): the key the call runs as, and the auth fault if any.

    The key is the first of header, query, then (OpenAI-compatible only) bearer. Any OAuth
    style credential where none is accepted is a 401; any key that is not valid is a 400
    API_KEY_INVALID; no credential at all is the 403 for unregistered callers.
    """
    key_sources = KEY_SOURCES + (("bearer",) if dialect == "openai" else ())
    keys = sorted((c for c in credentials if c[0] in key_sources), key=lambda c: key_sources.index(c[0]))
    source, key = keys[0] if keys else (None, None)
    if any(s not in key_sources for s, _ in credentials):
        return key, source, faults.oauth_expected()
    if not keys:
        return None, None, faults.unregistered_caller()
    if not all(key_valid(value) for _, value in keys):
        return key, source, faults.key_invalid()
    return key, source, None
