"""What a request brings in, read as hostile: its body, bounded in size and time, and that body as JSON.

- The body is read in pieces, never more than `VAULT_MAX_BODY_BYTES` (413 whether the size
  was announced by `Content-Length` or the body came chunked), and it must finish arriving
  within `VAULT_BODY_TIMEOUT_SECONDS` (408). After either refusal the connection stops being
  read, so a client cannot keep a worker's connection busy by trickling bytes.
- JSON must be UTF-8, strict (no `NaN`), nested at most `MAX_JSON_DEPTH` deep and have at
  most `MAX_JSON_TOKENS` elements — beyond that no Gemini request is meaningful.
- Small bodies are parsed inline with the C decoder. A large, element-heavy body is parsed in
  gevent's thread pool with the pure-Python scanner, which gives up the GIL between
  bytecodes: parsing it takes longer, but the worker's other streams keep flowing.
- A number in the query string is ASCII digits within a database's reach (`whole_number`):
  `str.isdigit` also takes '²' and '①', which `int` refuses, and `int` gives up past 4,300 digits.
"""

import json
import json.scanner
import re
import socket
from collections.abc import Callable, Iterator
from typing import Any

from flask import Flask, Request, current_app, request

from vault.errors import BadRequest, PayloadTooLarge, RequestTimeout, UnsupportedMediaType
from vault.security import gevent_serving, off_hub

READ_SIZE = 64 * 1024
MAX_JSON_DEPTH = 100  # protobuf's own recursion limit: Google refuses deeper messages anyway
MAX_JSON_TOKENS = 4_000_000
INLINE_JSON_TOKENS = 50_000
JSON_TYPES = ("application/json",)
BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
WHOLE_NUMBER = re.compile(r"[0-9]{1,19}")
BIGINT_MAX = 2**63 - 1  # past it SQLite overflows and PostgreSQL refuses to compare
INTEGER_MAX = 2**31 - 1  # the largest id of an INTEGER key (users, Vault keys) PostgreSQL compares
LAST_PAGE = 1_000_000


def install_body_reader(app: Flask, skip: Callable[[Request], bool]) -> None:
    """Read every request body up front (bounded), except where `skip` says the view reads it later.

    Runs before any other hook, so CSRF checks and form parsing see the bounded copy.
    """

    def read_bounded_body() -> None:
        if request.method in BODY_METHODS and not skip(request):
            read_body(request)

    app.before_request_funcs.setdefault(None, []).insert(0, read_bounded_body)


def read_body(req: Request) -> bytes:
    """The request's body, read once within the size and time limits; cached on `req`.

    Raises `PayloadTooLarge` (413) or `RequestTimeout` (408); either way the rest of the
    body is never read.
    """
    cached = getattr(req, "_cached_data", None)
    if cached is not None:
        return cached
    limit = current_app.config["VAULT_MAX_BODY_BYTES"]
    deadline = current_app.config["VAULT_BODY_TIMEOUT_SECONDS"]
    declared = req.content_length
    if declared is not None and declared > limit:
        stop_reading(req)
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    chunked = "chunked" in req.headers.get("Transfer-Encoding", "").lower()
    if declared is None and not chunked:
        req._cached_data = b""
        return b""
    try:
        body = read_within(req.environ["wsgi.input"], declared, limit, deadline)
    except (PayloadTooLarge, RequestTimeout):
        stop_reading(req)
        raise
    req._cached_data = body
    return body


def read_within(stream, declared: int | None, limit: int, deadline: float) -> bytes:
    """Up to `declared` bytes (or to the end) of `stream`, at most `limit`, within `deadline` seconds."""
    timeout = _deadline(deadline)
    try:
        with timeout:
            return _read_pieces(stream, declared, limit)
    except OSError as exc:
        raise BadRequest("The request body could not be read.") from exc


def _read_pieces(stream, declared: int | None, limit: int) -> bytes:
    pieces, size = [], 0
    wanted = declared if declared is not None else limit + 1
    while size < wanted:
        piece = stream.read(min(READ_SIZE, wanted - size))
        if not piece:
            break
        pieces.append(piece)
        size += len(piece)
        if size > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    if declared is not None and size < declared:
        raise BadRequest("The request body ended before its Content-Length.")
    return b"".join(pieces)


def body_pieces(req: Request, length: int, deadline: float) -> Iterator[bytes]:
    """Exactly `length` bytes of the body in pieces of at most `READ_SIZE`, never held whole (uploads).

    Each piece must arrive within `deadline` seconds (`RequestTimeout`); a body that ends
    early is a `BadRequest`. Either way the rest of the connection is not read.
    """
    stream, left = req.environ["wsgi.input"], length
    while left > 0:
        try:
            with _deadline(deadline):
                piece = stream.read(min(READ_SIZE, left))
        except RequestTimeout:
            stop_reading(req)
            raise
        except OSError as exc:
            raise BadRequest("The request body could not be read.") from exc
        if not piece:
            stop_reading(req)
            raise BadRequest("The request body ended before its Content-Length.")
        left -= len(piece)
        yield piece


class _NoDeadline:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc) -> bool:
        return False


def _deadline(seconds: float):
    """A gevent timeout raising `RequestTimeout` when serving under gevent (the body read is cooperative)."""
    if not seconds or not gevent_serving():
        return _NoDeadline()
    from gevent import Timeout

    return Timeout(seconds, RequestTimeout("The request body did not arrive in time."))


def stop_reading(req: Request) -> None:
    """Stop reading this connection: the server answers, then closes instead of draining the rest."""
    sock = req.environ.get("gunicorn.socket")
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass


def require_json_type(req: Request) -> None:
    """415 unless the body is declared as JSON (`application/json`, any `+json`), in UTF-8."""
    mimetype = req.mimetype
    if mimetype not in JSON_TYPES and not (mimetype.startswith("application/") and mimetype.endswith("+json")):
        raise UnsupportedMediaType("Send the body as JSON with 'Content-Type: application/json'.")
    charset = req.mimetype_params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise UnsupportedMediaType("JSON bodies must be UTF-8.")


def parse_json(raw: bytes, tokens: int | None = None) -> Any:
    """`raw` as a JSON value; `BadRequest` if it is not strict UTF-8 JSON within the limits.

    `tokens` is `element_count(raw)` when the caller already has it.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("The request body is not UTF-8.") from None
    tokens = element_count(raw) if tokens is None else tokens
    if tokens > MAX_JSON_TOKENS:
        raise BadRequest(f"The JSON body has more than {MAX_JSON_TOKENS} elements.")
    if tokens <= INLINE_JSON_TOKENS:  # about 5 ms of C parsing at most
        return _decode_checked(text, _c_loads, may_nest=_containers(raw) > MAX_JSON_DEPTH)
    return off_hub(_decode_checked, text, _python_loads, True)


def encode_json(value: Any, large: bool) -> bytes:
    """`value` as compact UTF-8 JSON; a `large` one is encoded off the hub by the pure-Python encoder."""
    encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
    if not large:
        return encoder.encode(value).encode()
    return off_hub(lambda: "".join(encoder.iterencode(value)).encode())


def element_count(raw: bytes) -> int:
    """An upper bound of the elements in a JSON text (separators and openers, also inside strings)."""
    return raw.count(b",") + raw.count(b":") + _containers(raw)


def _containers(raw: bytes) -> int:
    return raw.count(b"[") + raw.count(b"{")


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _c_loads(text: str) -> Any:
    return json.loads(text, parse_constant=_reject_constant)


def _python_loads(text: str) -> Any:
    decoder = json.JSONDecoder(parse_constant=_reject_constant)
    decoder.scan_once = json.scanner.py_make_scanner(decoder)
    return decoder.decode(text)


def _decode_checked(text: str, loads: Callable[..., Any], may_nest: bool) -> Any:
    try:
        value = loads(text)
    except RecursionError:
        raise BadRequest(f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels.") from None
    except ValueError:
        raise BadRequest("The request body is not valid JSON.") from None
    if may_nest and depth_of(value) > MAX_JSON_DEPTH:
        raise BadRequest(f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels.")
    return value


def depth_of(value: Any) -> int:
    """How deeply `value` nests (a scalar is 0, `[]` is 1), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_JSON_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def whole_number(text: str | None, most: int = BIGINT_MAX) -> int | None:
    """`text` as a whole number from 0 to `most`, or None for anything else (a sign, a space, '²')."""
    number = int(text) if text and WHOLE_NUMBER.fullmatch(text) else None
    return number if number is not None and number <= most else None


def page_number(text: str | None, last: int = LAST_PAGE) -> int:
    """A `?page=` from 1 to `last`; anything else reads as the first page."""
    return whole_number(text, last) or 1
