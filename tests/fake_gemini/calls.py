"""What the endpoint functions receive and return, shared by the native and OpenAI dialects."""

from dataclasses import dataclass, field

from tests.fake_gemini import faults
from tests.fake_gemini.faults import Fault
from tests.fake_gemini.script import Reply

Headers = tuple[tuple[str, str], ...]


class ApiError(Exception):
    """Raised by an endpoint function to answer with `fault` (plus `headers`) instead of a result."""

    def __init__(self, fault: Fault, headers: Headers = ()) -> None:
        super().__init__(fault.status)
        self.fault = fault
        self.headers = headers


@dataclass
class Answer:
    """A 200 that needs response headers (the upload protocol's): a JSON `payload`, or an
    empty body when it is None."""

    payload: dict | None = None
    headers: Headers = ()


@dataclass
class Stream:
    """A streamed answer: the events in order and how they are framed on the wire.

    `framing` is "sse" (native `data: ...\\r\\n\\r\\n`), "array" (native JSON array written
    progressively) or "openai" (`data: ...\\n\\n` ending with `data: [DONE]`).
    """

    events: list[dict]
    framing: str


@dataclass
class Call:
    """One routed, authenticated call as the endpoint functions see it.

    `key` is the key it runs as, `resources` the fake's `ResourceStore` (files and cached
    contents per key), `alt` the response format system parameter ("json", "sse" or None).
    For the Files and cachedContents APIs: `resource` is the name in the path
    (`files/abc`), `headers` the request headers (lower-cased names), `payload` the buffered
    raw body, `body_reader` the unread body of an upload chunk, `uploads` the fake's upload
    sessions and `base_url` the fake's own root (upload URLs point there).
    """

    endpoint: str
    version: str
    model: str | None
    body: object
    query: dict[str, list[str]]
    reply: Reply
    response_id: str
    catalog: dict[str, dict]
    embedding_dim: int
    extra: dict = field(default_factory=dict)
    key: str | None = None
    resources: object = None
    alt: str | None = None
    resource: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    payload: bytes = b""
    body_reader: object = None
    uploads: object = None
    base_url: str = ""

    def param(self, name: str, default: str | None = None) -> str | None:
        """The first value of a query parameter."""
        return self.query.get(name, [default])[0]


def require_object(body: object) -> dict:
    """The JSON body as an object, or the 400 upstream sends for anything else."""
    if not isinstance(body, dict):
        raise ApiError(faults.invalid_argument(
            'Invalid JSON payload received. Unknown name "": Root element must be a message.'))
    return body


def require_model(call: Call, method: str, model: str | None = None) -> dict:
    """The catalog entry for the call's model, or 404 if unknown or not serving `method`."""
    name = model or call.model or ""
    resource = call.catalog.get(name)
    serves = resource and (method in resource["supportedGenerationMethods"]
                           or method == "batchEmbedContents" and
                           "embedContent" in resource["supportedGenerationMethods"])
    if not serves:
        raise ApiError(faults.not_found(
            f"models/{name} is not found for API version {call.version}, or is not supported "
            f"for {method}. Call ListModels to see the list of available models and their "
            "supported methods."))
    return resource


def require_own_resources(call: Call, body: dict) -> None:
    """The 403 upstream sends when `body` names a file or cached content of another project."""
    fault = call.resources.denial(call.key, body) if call.resources is not None else None
    if fault:
        raise ApiError(fault)


def page_size(raw: str | None, default: int, maximum: int) -> int:
    """A list's `pageSize`: `default` when absent or not positive, capped at `maximum`."""
    try:
        size = int(raw) if raw else default
    except ValueError as exc:
        raise ApiError(faults.invalid_argument(f"Invalid value at 'page_size' (TYPE_INT32), \"{raw}\"")) from exc
    return min(size, maximum) if size > 0 else default


def list_owned(call: Call, kind: str, default_size: int, max_size: int) -> dict:
    """GET /{v}/{kind}: one page of the calling key's resources; `{}` when it has none.

    `nextPageToken` is there only when more follow; a token of another key or list is a 400.
    """
    size = page_size(call.param("pageSize"), default_size, max_size)
    try:
        items, token = call.resources.page(call.key, kind, size, call.param("pageToken"))
    except ValueError as exc:
        raise ApiError(faults.invalid_argument("Invalid page token.", with_details=False)) from exc
    page = {kind: items} if items else {}
    if token:
        page["nextPageToken"] = token
    return page
