"""A multipart upload's metadata part, rewritten from what the Vault understands; the bytes stream on.

`multipart/related` carries the file's metadata (JSON) first, then its bytes. The metadata is
read (at most `HEAD_LIMIT` bytes), parsed and replaced by the Vault's own encoding of the
fields it allows -- a caller cannot name the file or set anything Google would read -- and
the rest of the body is relayed untouched, piece by piece, so the whole upload is never held.
"""

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from vault.errors import BadRequest

HEAD_LIMIT = 64 * 1024


@dataclass
class RewrittenBody:
    """The body to send upstream: its new length and its pieces."""

    length: int
    pieces: Iterator[bytes]


def rewrite(pieces: Iterator[bytes], length: int, boundary: str, clean: Callable[[object], dict]) -> RewrittenBody:
    """The body with its first part replaced by `clean(metadata)`; `BadRequest` if it is not one.

    `length` is the body's announced length; `clean` turns the parsed metadata JSON into the
    object to send (raising `BadRequest` for fields it does not allow).
    """
    delimiter = b"--" + boundary.encode("ascii")
    buffer = b""
    while True:
        end = buffer.find(b"\r\n" + delimiter, len(delimiter))
        if end != -1:
            break
        if len(buffer) > HEAD_LIMIT:
            raise BadRequest("A multipart upload's metadata part must come first and be at most 64 KiB.")
        piece = next(pieces, b"")
        if not piece:
            raise BadRequest("The multipart body ended before its file part.")
        buffer += piece
    metadata = parse_first_part(buffer[:end], delimiter)
    head = (delimiter + b"\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
            + json.dumps(clean(metadata)).encode())
    rest = buffer[end:]
    return RewrittenBody(length - end + len(head), _chain(head + rest, pieces))


def parse_first_part(part: bytes, delimiter: bytes) -> object:
    """The JSON of the first part (`--boundary`, headers, blank line, JSON)."""
    if not part.startswith(delimiter + b"\r\n"):
        raise BadRequest("A multipart upload must start with its boundary.")
    headers, separator, content = part[len(delimiter) + 2:].partition(b"\r\n\r\n")
    if not separator or b"json" not in headers.lower():
        raise BadRequest("A multipart upload's first part must be the file's JSON metadata.")
    try:
        return json.loads(content.decode("utf-8") or "{}")
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("A multipart upload's metadata is not valid JSON.") from None


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest
