"""The allow-list of proxied calls: which (method, path) the Vault serves and what each becomes upstream.

Nothing of the client's path reaches Google as text. The raw path (as sent, before any
decoding) is split on its slashes and each segment decoded once; every segment must be
non-empty, not a dot-segment, and made only of letters, digits and `.` `_` `-` `:` (so an
encoded `/ ? # %` or a double encoding fails here);
the model id must match `MODEL_ID` (a file or cache id `RESOURCE_ID`), the action must be one
of the table's; and the upstream path is then built anew from the table with the model
re-encoded. Files, cached contents and uploads (`/upload/{v}/files`) are served by
`vault.proxy.resources`; an upload's chunks carry its token (`upload_id`), not a key. Query parameters are
kept only where the action documents them, each one checked; Google's system parameters
(`fields`, `prettyPrint`, `alt=media` …) are refused, anything else is dropped.

Whether a call is billed is a property of its action here, never of a path prefix.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from vault.errors import BadRequest, MethodNotAllowed, NotFound

MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
SEGMENT = re.compile(r"[A-Za-z0-9._:-]+")
PAGE_SIZE = re.compile(r"[0-9]{1,4}")
PAGE_TOKEN = re.compile(r"[A-Za-z0-9_.~+/=-]{1,512}")
VERSIONS = ("v1beta", "v1")
RESOURCE_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
UPLOAD_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,128}")
NOT_SERVED = ("tunedModels", "batches", "operations", "corpora", "generatedFiles",
              "dynamic", "ragStores", "fileSearchStores")
# Google's system parameters change what the upstream answers (a field mask can drop
# `usageMetadata`) or how it authenticates; none may be set by a Vault caller.
SYSTEM_PARAMETERS = {"fields", "$fields", "prettyprint", "$prettyprint", "alt", "$alt", "callback", "$callback",
                     "quotauser", "$quotauser", "userip", "$userip", "upload_protocol", "uploadtype",
                     "access_token", "oauth_token", "$.xgafv", "$outputdefaults", "requestreason"}


@dataclass(frozen=True)
class Action:
    """One kind of proxied call: its name (usage records, metrics), dialect and billing."""

    name: str
    dialect: str          # "google" or "openai": the client's envelope and the upstream endpoint
    method: str
    billable: bool
    has_body: bool = False
    streaming: bool = False
    query: tuple[str, ...] = ()
    kind: str = "model"   # "model", "files", "cachedContents" or "upload"


MODELS_LIST = Action("models.list", "google", "GET", billable=False, query=("pageSize", "pageToken"))
MODELS_GET = Action("models.get", "google", "GET", billable=False)
NATIVE_METHODS = {
    "generateContent": Action("generateContent", "google", "POST", billable=True, has_body=True),
    "streamGenerateContent": Action("streamGenerateContent", "google", "POST", billable=True, has_body=True,
                                    streaming=True, query=("alt",)),
    "countTokens": Action("countTokens", "google", "POST", billable=False, has_body=True),
    "embedContent": Action("embedContent", "google", "POST", billable=True, has_body=True),
    "batchEmbedContents": Action("batchEmbedContents", "google", "POST", billable=True, has_body=True),
}
PAGING = ("pageSize", "pageToken")
RESOURCE_ACTIONS = {
    ("files", False, "GET"): Action("files.list", "google", "GET", billable=False, query=PAGING, kind="files"),
    ("files", True, "GET"): Action("files.get", "google", "GET", billable=False, kind="files"),
    ("files", True, "DELETE"): Action("files.delete", "google", "DELETE", billable=False, kind="files"),
    ("cachedContents", False, "GET"): Action("cachedContents.list", "google", "GET", billable=False, query=PAGING,
                                             kind="cachedContents"),
    ("cachedContents", False, "POST"): Action("cachedContents.create", "google", "POST", billable=False,
                                              has_body=True, kind="cachedContents"),
    ("cachedContents", True, "GET"): Action("cachedContents.get", "google", "GET", billable=False,
                                            kind="cachedContents"),
    ("cachedContents", True, "PATCH"): Action("cachedContents.patch", "google", "PATCH", billable=False,
                                              has_body=True, query=("updateMask",), kind="cachedContents"),
    ("cachedContents", True, "DELETE"): Action("cachedContents.delete", "google", "DELETE", billable=False,
                                               kind="cachedContents"),
}
UPLOAD_START = Action("files.upload", "google", "POST", billable=False, query=("uploadType",), kind="upload")
UPLOAD_CHUNK = Action("files.upload.chunk", "google", "POST", billable=False,
                      query=("upload_id", "upload_protocol"), kind="upload")
CHAT = Action("chat.completions", "openai", "POST", billable=True, has_body=True)
EMBEDDINGS = Action("embeddings", "openai", "POST", billable=True, has_body=True)
IMAGES = Action("images.generations", "openai", "POST", billable=True, has_body=True)  # billed per image
OPENAI_MODELS_LIST = Action("openai.models", "openai", "GET", billable=False)
OPENAI_MODELS_GET = Action("openai.models.get", "openai", "GET", billable=False)
ACTION_NAMES = frozenset(
    [a.name for a in NATIVE_METHODS.values()]
    + [a.name for a in (MODELS_LIST, MODELS_GET, CHAT, EMBEDDINGS, IMAGES, OPENAI_MODELS_LIST, OPENAI_MODELS_GET)]
    + [a.name for a in RESOURCE_ACTIONS.values()] + [UPLOAD_START.name, UPLOAD_CHUNK.name]
)
OPENAI_PATHS = {("chat", "completions"): CHAT, ("embeddings",): EMBEDDINGS, ("images", "generations"): IMAGES,
                ("models",): OPENAI_MODELS_LIST}


@dataclass(frozen=True)
class Call:
    """A request resolved against the allow-list: the action, the upstream path and query."""

    action: Action
    upstream_path: str
    model: str = ""
    query: list[tuple[str, str]] = field(default_factory=list)
    resource: str = ""  # `files/{id}` or `cachedContents/{id}` a call acts on
    version: str = "v1beta"


def resolve(method: str, raw_path: str, args: Iterable[tuple[str, str]], bearer_caller: bool) -> Call:
    """The allow-listed call for `method raw_path?args`, or `BadRequest` / `NotFound` (no upstream call).

    `raw_path` is the path as it came on the wire, still percent-encoded: it is split on its
    literal slashes first and each segment decoded after, so an encoded `/` (`%2F`) stays
    inside its segment, where it is refused. `bearer_caller` tells the openai SDK (Bearer)
    from google-genai on the shared `/v1/models`.
    """
    segments = path_segments(raw_path)
    if segments[0] == "upload":
        return resolve_upload(method, segments[1:], list(args))
    version, rest = segments[0], segments[1:]
    if version not in VERSIONS or not rest:
        raise NotFound("This path is not served by the Vault.")
    if rest[0] in ("files", "cachedContents"):
        return resolve_resource(method, version, rest, list(args))
    if version == "v1beta" and rest[0] == "openai":
        action, model = openai_action(tuple(rest[1:]))
    elif version == "v1" and tuple(rest) in (("chat", "completions"), ("embeddings",), ("images", "generations")):
        action, model = OPENAI_PATHS[tuple(rest)], ""
    elif version == "v1" and rest[0] == "models" and bearer_caller and method != "POST":
        action, model = openai_action(tuple(rest))
    elif rest[0] == "models":
        action, model = native_action(rest[1:])
    else:
        raise NotFound(not_served_message(rest[0]))
    check_method(method, action)
    return Call(action, upstream_path(version, action, model), model, allowed_query(action, list(args)))


def resolve_resource(method: str, version: str, rest: list[str], args: list[tuple[str, str]]) -> Call:
    """`{v}/files[/{id}]` or `{v}/cachedContents[/{id}]`: which operation, on which resource."""
    kind = rest[0]
    if len(rest) > 2:
        raise NotFound("This path is not served by the Vault.")
    named = len(rest) == 2
    if named and ":" in rest[1]:  # `files/{id}:download` and other custom methods
        raise NotFound("This path is not served by the Vault.")
    if named and not RESOURCE_ID.fullmatch(rest[1]):
        raise BadRequest(f"'{rest[1][:64]}' is not a valid {kind} id.")
    action = RESOURCE_ACTIONS.get((kind, named, method))
    if action is None:
        allowed = sorted(m for (k, n, m) in RESOURCE_ACTIONS if k == kind and n == named)
        raise MethodNotAllowed(f"{method[:16]} is not served on this path; use {' or '.join(allowed)}.",
                               headers={"Allow": ", ".join(allowed)})
    resource = f"{kind}/{rest[1]}" if named else ""
    path = f"/{version}/{resource or kind}"
    return Call(action, path, "", allowed_query(action, args), resource=resource, version=version)


def resolve_upload(method: str, rest: list[str], args: list[tuple[str, str]]) -> Call:
    """`/upload/{v}/files`: an upload's start (with a Vault key) or, with `upload_id`, one of its chunks."""
    if len(rest) != 2 or rest[0] not in VERSIONS or rest[1] != "files":
        raise NotFound("This path is not served by the Vault.")
    version = rest[0]
    chunk = any(name == "upload_id" for name, _ in args)
    action = UPLOAD_CHUNK if chunk else UPLOAD_START
    check_method(method, action)
    return Call(action, f"/upload/{version}/files", "", allowed_query(action, args), version=version)


def path_segments(raw_path: str) -> list[str]:
    """The decoded segments of a raw path, each checked (see `check_segments`)."""
    if not raw_path.startswith("/"):
        raise BadRequest("The path must start with '/'.")
    try:
        segments = [unquote(segment, errors="strict") if "%" in segment else segment
                    for segment in raw_path[1:].split("/")]
    except UnicodeDecodeError:
        raise BadRequest("The path holds characters the Vault does not accept.") from None
    check_segments(segments)
    return segments


def check_segments(segments: list[str]) -> None:
    """Every segment non-empty, not `.`/`..`, and of plain characters only."""
    for segment in segments:
        if not segment:
            raise BadRequest("The path has an empty segment.")
        if segment.partition(":")[0].strip(".") == "" and segment.partition(":")[0]:
            raise BadRequest("The path has a dot-segment.")
        if not SEGMENT.fullmatch(segment):
            raise BadRequest("The path holds characters the Vault does not accept.")


def native_action(rest: list[str]) -> tuple[Action, str]:
    """`models` (list), `models/{model}` (get) or `models/{model}:{method}`."""
    if not rest:
        return MODELS_LIST, ""
    if len(rest) > 1:
        raise NotFound("This path is not served by the Vault.")
    model, colon, method = rest[0].partition(":")
    model = checked_model(model)
    if not colon:
        return MODELS_GET, model
    action = NATIVE_METHODS.get(method)
    if action is None:
        raise NotFound(f"The model method '{method[:64]}' is not served by the Vault.")
    return action, model


def openai_action(rest: tuple[str, ...]) -> tuple[Action, str]:
    """An OpenAI-compatible path below the base (`chat/completions`, `embeddings`, `images/generations`,
    `models[/{id}]`)."""
    if rest in OPENAI_PATHS:
        return OPENAI_PATHS[rest], ""
    if len(rest) == 2 and rest[0] == "models":
        return OPENAI_MODELS_GET, checked_model(rest[1])
    raise NotFound("This OpenAI-compatible path is not served by the Vault.")


def checked_model(model: str) -> str:
    """`model` if it is a plain model id (a `models/` prefix is for bodies, not paths)."""
    if not MODEL_ID.fullmatch(model):
        raise BadRequest("The model id may only hold letters, digits, '.', '-' and '_'.")
    return model


def check_method(method: str, action: Action) -> None:
    """405 for HEAD, OPTIONS or any other method the action does not take (no upstream call)."""
    if method != action.method:
        raise MethodNotAllowed(f"{method[:16]} is not served on this path; use {action.method}.",
                               headers={"Allow": action.method})


def not_served_message(resource: str) -> str:
    if resource in NOT_SERVED:
        return f"'{resource}' is not served by the Vault yet."
    return "This path is not served by the Vault."


def upstream_path(version: str, action: Action, model: str) -> str:
    """The upstream path, built from the table; the model is the only client value and is re-encoded."""
    encoded = quote(model, safe="")
    if action.dialect == "openai":
        paths = {CHAT: "chat/completions", EMBEDDINGS: "embeddings", IMAGES: "images/generations",
                 OPENAI_MODELS_LIST: "models",
                 OPENAI_MODELS_GET: f"models/{encoded}"}
        return "/v1beta/openai/" + paths[action]
    if action is MODELS_LIST:
        return f"/{version}/models"
    if action is MODELS_GET:
        return f"/{version}/models/{encoded}"
    return f"/{version}/models/{encoded}:{action.name}"


def allowed_query(action: Action, args: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The query the upstream gets: documented parameters only, each checked once."""
    kept: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, value in args:
        if name == "key":
            continue  # the caller's Vault key: consumed at the door
        if name in seen:
            raise BadRequest(f"The query parameter '{name[:32]}' is given more than once.")
        seen.add(name)
        if name in action.query:
            kept += checked_parameter(name, value)
        elif name.lower() in SYSTEM_PARAMETERS and not (name == "alt" and value == "json"):
            raise BadRequest(f"The system parameter '{name[:32]}' is not accepted through the Vault.")
    return kept


def checked_parameter(name: str, value: str) -> list[tuple[str, str]]:
    """One documented parameter, validated; `alt=json` is the default and is not sent."""
    if name == "alt":
        if value not in ("sse", "json"):
            raise BadRequest("'alt' must be 'sse' or 'json'.")
        return [("alt", "sse")] if value == "sse" else []
    if name == "pageSize" and PAGE_SIZE.fullmatch(value) and 1 <= int(value) <= 1000:
        return [(name, value)]
    if name == "pageToken" and PAGE_TOKEN.fullmatch(value):
        return [(name, value)]
    if name == "updateMask" and value in ("ttl", "expireTime", "expire_time"):
        return [(name, value)]
    if name == "uploadType" and value in ("resumable", "multipart"):
        return [(name, value)]
    if name == "upload_id" and UPLOAD_TOKEN.fullmatch(value):
        return [(name, value)]
    if name == "upload_protocol" and value == "resumable":
        return []
    raise BadRequest(f"The query parameter '{name}' is not valid.")
