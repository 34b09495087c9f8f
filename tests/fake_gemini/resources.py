"""Files and cached contents, each owned by the key (the Google project) that made it.

Upstream keeps these per project: a request that names `files/abc` or `cachedContents/xyz`
with a key of another project, or a name that does not exist, gets a 403. The store is a
per-key dict of resources behind the fake's Files API (uploads, list, get, delete) and
cachedContents API (create, list, get, patch, delete), and the ownership checks every
generate call makes. A resource past its `expirationTime` (files) or `expireTime` (cached
contents) no longer exists for anyone, as upstream deletes it.
"""

import base64
import hashlib
import itertools
import re
import secrets
import string
import threading
from datetime import UTC, datetime, timedelta

from tests.fake_gemini import faults
from tests.fake_gemini.faults import Fault

UPSTREAM = "https://generativelanguage.googleapis.com"
KINDS = ("files", "cachedContents")
FILE_URI = re.compile(r"^(?:https://generativelanguage\.googleapis\.com/v1(?:alpha|beta)?/)?"
                      r"files/(?P<id>[^/?#]+)$")
FILE_KEYS = {"fileUri", "file_uri"}
CACHE_KEYS = {"cachedContent", "cached_content"}
LIFETIME = timedelta(hours=48)
CACHE_LIFETIME = timedelta(hours=1)
ID_ALPHABET = string.ascii_lowercase + string.digits
ID_LENGTH = 12
EXPIRY_FIELDS = ("expirationTime", "expireTime")


class ResourceStore:
    """Thread-safe store: key → {resource name → resource}; names are unique across keys."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[str, dict[str, dict]] = {}
        self._ids = itertools.count(1)

    def add(self, key: str, resource: dict) -> str:
        """Store `resource` (it must carry its `name`) as owned by `key`; returns the name.

        Raises ValueError if a live resource of another key already has that name.
        """
        name = resource["name"]
        with self._lock:
            owner = self._owner(name)
            if owner is not None and owner != key:
                raise ValueError(f"{name} already belongs to another key")
            for resources in self._by_key.values():
                resources.pop(name, None)  # an expired namesake, if any
            self._by_key.setdefault(key, {})[name] = resource
        return name

    def add_file(self, key: str, name: str | None = None, mime_type: str = "text/plain",
                 size_bytes: int = 5, **fields) -> str:
        """A `files/...` resource in ACTIVE state owned by `key`; returns its name."""
        name = _named("files", name or f"file{self._next_id():08d}")
        resource = file_resource(name, "v1beta", mime_type, size_bytes, "ZmFrZQ==")
        return self.add(key, resource | fields)

    def add_cached_content(self, key: str, model: str = "gemini-2.5-flash",
                           name: str | None = None, token_count: int = 1024, **fields) -> str:
        """A `cachedContents/...` resource for `model` owned by `key`; returns its name."""
        name = _named("cachedContents", name or f"cache{self._next_id():07d}")
        now = datetime.now(UTC)
        resource = {"name": name, "model": f"models/{model.removeprefix('models/')}",
                    "createTime": stamp(now), "updateTime": stamp(now),
                    "expireTime": stamp(now + CACHE_LIFETIME),
                    "usageMetadata": {"totalTokenCount": token_count}}
        return self.add(key, resource | fields)

    def fresh_name(self, kind: str) -> str:
        """An unused `{kind}/<12 random lowercase letters and digits>`, as upstream mints them."""
        while True:
            name = f"{kind}/" + "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))
            with self._lock:
                if not any(name in resources for resources in self._by_key.values()):
                    return name

    def get(self, name: str) -> dict | None:
        """The live resource called `name`, whoever owns it."""
        with self._lock:
            owner = self._owner(name)
            return None if owner is None else self._by_key[owner][name]

    def update(self, name: str, **fields) -> dict:
        """Change fields of the resource `name` in place; returns it (KeyError if gone)."""
        with self._lock:
            owner = self._owner(name)
            if owner is None:
                raise KeyError(name)
            resource = self._by_key[owner][name]
            resource.update(fields)
            return resource

    def owner(self, name: str) -> str | None:
        """The key that owns `name`, or None if nobody does."""
        with self._lock:
            return self._owner(name)

    def owns(self, key: str | None, name: str) -> bool:
        """Whether `key`'s project may use `name` (it exists, is live and is `key`'s)."""
        with self._lock:
            return key is not None and self._owner(name) == key

    def owned_by(self, key: str, kind: str | None = None) -> list[dict]:
        """The live resources of `key` in creation order (only `files` or `cachedContents`
        if `kind` is given)."""
        now = datetime.now(UTC)
        with self._lock:
            items = list(self._by_key.get(key, {}).values())
        return [r for r in items if (kind is None or r["name"].startswith(f"{kind}/")) and not expired(r, now)]

    def page(self, key: str, kind: str, size: int, token: str | None) -> tuple[list[dict], str | None]:
        """One page of `key`'s `kind` resources and the token of the next page (None on the last).

        Raises ValueError for a token this key did not get for this kind of list.
        """
        start = 0 if not token else page_offset(token, kind, key)
        if start is None or start < 0:
            raise ValueError("invalid page token")
        items = self.owned_by(key, kind)
        more = start + size < len(items)
        return items[start:start + size], page_token(kind, key, start + size) if more else None

    def remove(self, name: str) -> None:
        """Forget `name` (a later reference to it is a 403 for everyone)."""
        with self._lock:
            for resources in self._by_key.values():
                resources.pop(name, None)

    def clear(self) -> None:
        """Forget every resource."""
        with self._lock:
            self._by_key.clear()

    def denial(self, key: str | None, body: object) -> Fault | None:
        """The 403 upstream sends if `body` names a cached content or file `key` may not use."""
        caches, files = references(body)
        for name in caches:
            if not self.owns(key, name):
                return faults.cached_content_denied()
        for name in files:
            if not self.owns(key, name):
                return faults.file_denied(name)
        return None

    def _owner(self, name: str) -> str | None:
        """The key owning a live resource called `name` (call with the lock held)."""
        now = datetime.now(UTC)
        return next((k for k, resources in self._by_key.items()
                     if name in resources and not expired(resources[name], now)), None)

    def _next_id(self) -> int:
        with self._lock:
            return next(self._ids)


def references(body: object) -> tuple[list[str], list[str]]:
    """Every cached content and file a request body names, anywhere in it.

    Covers native `cachedContent` and `parts[].fileData.fileUri` (camel or snake case, also
    inside countTokens' `generateContentRequest`), and on the OpenAI-compatible endpoint
    `extra_body.google.cached_content` and `image_url` parts pointing at a Gemini file.
    """
    caches: list[str] = []
    files: list[str] = []
    _walk(body, caches, files)
    return caches, files


def file_name(uri: str) -> str | None:
    """`files/abc` for `files/abc` or `https://generativelanguage.googleapis.com/v1beta/files/abc`."""
    m = FILE_URI.match(uri.strip())
    return f"files/{m['id']}" if m else None


def _walk(node: object, caches: list[str], files: list[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item, caches, files)
        return
    if not isinstance(node, dict):
        return
    for name, value in node.items():
        if name in CACHE_KEYS and isinstance(value, str):
            caches.append(value)
        elif name in FILE_KEYS and isinstance(value, str):
            _add_file(value, files)
        elif name == "image_url":
            url = value.get("url") if isinstance(value, dict) else value
            if isinstance(url, str):
                _add_file(url, files)
        else:
            _walk(value, caches, files)


def _add_file(uri: str, files: list[str]) -> None:
    name = file_name(uri)
    if name:
        files.append(name)


def file_resource(name: str, version: str, mime_type: str, size: int, sha256_b64: str,
                  display_name: str | None = None) -> dict:
    """A File as upstream returns it: ACTIVE, UPLOADED, expiring 48 hours from now."""
    now = datetime.now(UTC)
    resource = {"name": name}
    if display_name:
        resource["displayName"] = display_name
    return resource | {"mimeType": mime_type, "sizeBytes": str(size), "createTime": stamp(now),
                       "updateTime": stamp(now), "expirationTime": stamp(now + LIFETIME),
                       "sha256Hash": sha256_b64, "uri": f"{UPSTREAM}/{version}/{name}",
                       "state": "ACTIVE", "source": "UPLOADED"}


def expired(resource: dict, now: datetime | None = None) -> bool:
    """Whether `resource` is past its `expirationTime` / `expireTime`."""
    for field in EXPIRY_FIELDS:
        moment = parse_time(resource.get(field))
        if moment is not None:
            return moment <= (now or datetime.now(UTC))
    return False


def page_token(kind: str, key: str, offset: int) -> str:
    """An opaque token for the page of `key`'s `kind` list starting at `offset`.

    Tokens belong to one project, as upstream's do: another key's token is refused.
    """
    return base64.urlsafe_b64encode(f"fake-{kind}-page:{_fingerprint(key)}:{offset}".encode()).decode()


def page_offset(token: str, kind: str, key: str) -> int | None:
    """Where the page of a `page_token` starts; None if it is not one of `key`'s `kind` tokens."""
    try:
        prefix, _, offset = base64.urlsafe_b64decode(token.encode()).decode().rpartition(":")
        return int(offset) if prefix == f"fake-{kind}-page:{_fingerprint(key)}" else None
    except ValueError:
        return None


def parse_time(text: object) -> datetime | None:
    """An RFC 3339 timestamp ("2025-01-01T00:00:00.5Z") as an aware datetime; None if it is not one."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo else None


def stamp(moment: datetime) -> str:
    """A timestamp in upstream's format (UTC, microseconds, "Z")."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def _named(kind: str, name: str) -> str:
    return name if name.startswith(f"{kind}/") else f"{kind}/{name}"
