"""Files and cached contents, each owned by the key (the Google project) that made it.

Upstream keeps these per project: a request that names `files/abc` or `cachedContents/xyz`
with a key of another project, or a name that does not exist, gets a 403. The store is a
plain per-key dict of resources so a fuller Files / cachedContents API can be built on it.
"""

import itertools
import re
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


class ResourceStore:
    """Thread-safe store: key → {resource name → resource}; names are unique across keys."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[str, dict[str, dict]] = {}
        self._ids = itertools.count(1)

    def add(self, key: str, resource: dict) -> str:
        """Store `resource` (it must carry its `name`) as owned by `key`; returns the name."""
        name = resource["name"]
        with self._lock:
            owner = self._owner(name)
            if owner is not None and owner != key:
                raise ValueError(f"{name} already belongs to another key")
            self._by_key.setdefault(key, {})[name] = resource
        return name

    def add_file(self, key: str, name: str | None = None, mime_type: str = "text/plain",
                 size_bytes: int = 5, **fields) -> str:
        """A `files/...` resource in ACTIVE state owned by `key`; returns its name."""
        name = _named("files", name or f"file{self._next_id():08d}")
        now = datetime.now(UTC)
        resource = {"name": name, "mimeType": mime_type, "sizeBytes": str(size_bytes),
                    "createTime": _stamp(now), "updateTime": _stamp(now),
                    "expirationTime": _stamp(now + LIFETIME), "sha256Hash": "ZmFrZQ==",
                    "uri": f"{UPSTREAM}/v1beta/{name}", "state": "ACTIVE", "source": "UPLOADED"}
        return self.add(key, resource | fields)

    def add_cached_content(self, key: str, model: str = "gemini-2.5-flash",
                           name: str | None = None, token_count: int = 1024, **fields) -> str:
        """A `cachedContents/...` resource for `model` owned by `key`; returns its name."""
        name = _named("cachedContents", name or f"cache{self._next_id():07d}")
        now = datetime.now(UTC)
        resource = {"name": name, "model": f"models/{model.removeprefix('models/')}",
                    "createTime": _stamp(now), "updateTime": _stamp(now),
                    "expireTime": _stamp(now + timedelta(hours=1)),
                    "usageMetadata": {"totalTokenCount": token_count}}
        return self.add(key, resource | fields)

    def get(self, name: str) -> dict | None:
        """The resource called `name`, whoever owns it."""
        with self._lock:
            owner = self._owner(name)
            return None if owner is None else self._by_key[owner][name]

    def owner(self, name: str) -> str | None:
        """The key that owns `name`, or None if nobody does."""
        with self._lock:
            return self._owner(name)

    def owns(self, key: str | None, name: str) -> bool:
        """Whether `key`'s project may use `name`."""
        with self._lock:
            return key is not None and name in self._by_key.get(key, {})

    def owned_by(self, key: str, kind: str | None = None) -> list[dict]:
        """The resources of `key` (only `files` or `cachedContents` if `kind` is given)."""
        with self._lock:
            items = list(self._by_key.get(key, {}).values())
        return [r for r in items if kind is None or r["name"].startswith(f"{kind}/")]

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
        return next((k for k, resources in self._by_key.items() if name in resources), None)

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


def _named(kind: str, name: str) -> str:
    return name if name.startswith(f"{kind}/") else f"{kind}/{name}"


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
