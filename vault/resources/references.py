"""What a request body names: Files API files and cached contents, anywhere in the JSON.

Read as hostile: a reference is looked for under every key of every object, not only where
Gemini documents it, so no spelling or nesting lets a request name a resource unchecked.
- files: `fileData.fileUri` / `file_data.file_uri`, OpenAI `image_url.url`, `file.file_id`
  and any other `url`-like field whose value is a Files API name or URI;
- caches: `cachedContent` / `cached_content`, top level or inside the OpenAI-compatible
  `extra_body.google`.
A value that looks like it points at the Files API or a cache but is not exactly a name the
Vault understands is refused (400), never passed on.
"""

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from vault.errors import BadRequest

RESOURCE_ID = r"[a-z0-9][a-z0-9-]{0,63}"
FILE_NAME = re.compile(rf"files/(?P<id>{RESOURCE_ID})")
CACHE_NAME = re.compile(rf"cachedContents/(?P<id>{RESOURCE_ID})")
FILE_URI = re.compile(rf"https://generativelanguage\.googleapis\.com/v1(?:alpha|beta)?/files/(?P<id>{RESOURCE_ID})")
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
FILE_FIELDS = {"fileuri", "file_uri", "file_id", "fileid", "url", "uri", "image_url", "imageurl", "file_data",
               "filedata"}
CACHE_FIELDS = {"cachedcontent", "cached_content"}


@dataclass
class References:
    """The files and caches a body names (resource names, in order, without repeats)."""

    files: list[str] = field(default_factory=list)
    caches: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.files or self.caches)

    @property
    def names(self) -> list[str]:
        return self.caches + self.files


def references(payload: object) -> References:
    """Every file and cached content `payload` names; `BadRequest` for a malformed claim."""
    found = References()
    _walk(payload, found)
    return found


def file_name(value: str) -> str | None:
    """`files/{id}` for a Files API name or URI, None if `value` is not one."""
    match = FILE_NAME.fullmatch(value) or FILE_URI.fullmatch(value)
    return f"files/{match['id']}" if match else None


def cache_name(value: str) -> str:
    """`cachedContents/{id}` for a cache name; `BadRequest` for anything else."""
    if not CACHE_NAME.fullmatch(value):
        raise BadRequest("'cachedContent' must be a cached content name like 'cachedContents/abc123'.")
    return value


def _walk(node: object, found: References) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item, found)
        return
    if not isinstance(node, dict):
        return
    for name, value in node.items():
        lowered = name.lower() if isinstance(name, str) else ""
        if lowered in CACHE_FIELDS and isinstance(value, str):
            _add(found.caches, cache_name(value))
        elif lowered in FILE_FIELDS and isinstance(value, str):
            _file(value, found)
        else:
            _walk(value, found)


def _file(value: str, found: References) -> None:
    name = file_name(value)
    if name:
        _add(found.files, name)
    elif claims_a_file(value):
        raise BadRequest("A file reference must be a Files API name ('files/abc') or its URI "
                         "('https://generativelanguage.googleapis.com/v1beta/files/abc').")


def claims_a_file(value: str) -> bool:
    """Whether `value` (not exactly a name or URI) could still be read as a Files API reference.

    Anything naming Google's API host, and anything without a URL scheme that mentions
    `files/` (a relative path, a name behind a BOM or an encoding) is such a claim; an
    external URL that merely has `/files/` in its path, or a data URL, is not.
    """
    if value.startswith("data:"):
        return False
    decoded = unquote(unquote(value)).lower()
    if "generativelanguage" in decoded:
        return True
    return "files/" in decoded.replace("\\", "/") and not SCHEME.match(value)


def _add(names: list[str], name: str) -> None:
    if name not in names:
        names.append(name)
