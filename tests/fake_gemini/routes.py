"""Which operation a request is: the fake's routing table.

Native model methods, the OpenAI-compatible endpoints (chat, embeddings, images, models), the
Files API (`/{v}/files`), the upload endpoints (`/upload/{v}/files`: resumable start, the
session URL's commands, multipart) and cachedContents. Anything else is upstream's HTML 404.
"""

import re
from typing import NamedTuple

NATIVE_PATH = re.compile(r"^/(?P<version>v1beta|v1)/models(?:/(?P<model>[^/:]+)(?::(?P<method>\w+))?)?$")
OPENAI_PATH = re.compile(r"^/v1beta/openai/(?P<rest>chat/completions|embeddings|images/generations|models)"
                         r"(?:/(?:models/)?(?P<model>[^/]+))?$")
RESOURCE_PATH = re.compile(r"^/(?P<version>v1beta|v1)/(?P<kind>files|cachedContents)(?:/(?P<id>[^/:]+))?$")
UPLOAD_PATH = re.compile(r"^/upload/(?P<version>v1beta|v1)/files$")
NATIVE_POST = {"generateContent", "streamGenerateContent", "countTokens", "embedContent",
               "batchEmbedContents"}
OPENAI_ROUTES = {("POST", "chat/completions", False): "openai.chat",
                 ("POST", "embeddings", False): "openai.embeddings",
                 ("POST", "images/generations", False): "openai.images",
                 ("GET", "models", False): "openai.listModels",
                 ("GET", "models", True): "openai.getModel"}
RESOURCE_ROUTES = {("files", "GET", False): "files.list", ("files", "GET", True): "files.get",
                   ("files", "DELETE", True): "files.delete",
                   ("cachedContents", "POST", False): "cachedContents.create",
                   ("cachedContents", "GET", False): "cachedContents.list",
                   ("cachedContents", "GET", True): "cachedContents.get",
                   ("cachedContents", "PATCH", True): "cachedContents.patch",
                   ("cachedContents", "DELETE", True): "cachedContents.delete"}
# Calls on an upload session URL: the upload_id is the credential, any key is ignored.
SESSION_ENDPOINTS = {"files.upload.chunk", "files.upload.query", "files.upload.cancel"}
# Calls whose body is not JSON: the handler leaves it to the endpoint.
RAW_BODY_ENDPOINTS = SESSION_ENDPOINTS | {"files.upload.multipart"}


class Route(NamedTuple):
    """A routed call: its dialect ("native" / "openai"), endpoint, API version, model and
    the resource it names (`files/abc`, `cachedContents/xyz`), if any."""

    dialect: str
    endpoint: str
    version: str
    model: str | None = None
    resource: str | None = None


def route(method: str, path: str, query: dict[str, list[str]] | None = None,
          headers: dict[str, str] | None = None) -> Route | None:
    """The operation `method` on `path` is, or None for upstream's 404.

    `query` and `headers` (lower-cased names) only matter on the upload path, where the
    upload protocol and command pick the operation.
    """
    m = NATIVE_PATH.match(path)
    if m:
        endpoint = _native_endpoint(method, m["model"], m["method"])
        return Route("native", endpoint, m["version"], m["model"]) if endpoint else None
    m = OPENAI_PATH.match(path)
    if m and (method, m["rest"], m["model"] is not None) in OPENAI_ROUTES:
        return Route("openai", OPENAI_ROUTES[method, m["rest"], m["model"] is not None], "v1beta", m["model"])
    m = RESOURCE_PATH.match(path)
    if m and (m["kind"], method, m["id"] is not None) in RESOURCE_ROUTES:
        resource = f"{m['kind']}/{m['id']}" if m["id"] else None
        return Route("native", RESOURCE_ROUTES[m["kind"], method, m["id"] is not None], m["version"],
                     resource=resource)
    m = UPLOAD_PATH.match(path)
    if m and method == "POST":
        return Route("native", upload_endpoint(query or {}, headers or {}), m["version"])
    return None


def upload_endpoint(query: dict[str, list[str]], headers: dict[str, str]) -> str:
    """Which upload operation a POST to `/upload/{v}/files` is."""
    if query.get("upload_id"):
        command = headers.get("x-goog-upload-command", "").lower()
        for word in ("query", "cancel"):
            if word in command:
                return f"files.upload.{word}"
        return "files.upload.chunk"
    protocol = headers.get("x-goog-upload-protocol") or query.get("uploadType", [""])[0]
    return "files.upload.multipart" if protocol.lower() == "multipart" else "files.upload.start"


def is_upload_session(path: str, query: dict[str, list[str]]) -> bool:
    """Whether a request goes to an upload session URL (its body is streamed, not buffered)."""
    return bool(UPLOAD_PATH.match(path) and query.get("upload_id"))


def _native_endpoint(method: str, model: str | None, action: str | None) -> str | None:
    if method == "GET" and action is None:
        return "getModel" if model else "listModels"
    return action if method == "POST" and action in NATIVE_POST else None
