"""Request bodies read in bounded pieces, so an upload of any size never sits whole in memory.

A `BodyReader` reads one request's body (`Content-Length` or chunked) piece by piece.
Ordinary calls read it all at once before routing; upload chunks stream it through
`pieces()` into a running hash and byte count. Whatever is left unread when the answer is
sent is drained, so the connection stays usable for the next request.
"""

from collections.abc import Callable, Iterator
from email.message import Message
from typing import BinaryIO

PIECE = 64 * 1024


class BodyReader:
    """Reads one request body from `rfile`, counting every byte in `received`.

    `on_piece`, when set, sees each piece as it is read (the request log keeps a bounded
    copy). `truncated` turns True if the client closed before its body was complete.
    """

    def __init__(self, rfile: BinaryIO, headers: Message) -> None:
        self.rfile = rfile
        self.chunked = "chunked" in headers.get("Transfer-Encoding", "").lower()
        self._left = 0 if self.chunked else int(headers.get("Content-Length") or 0)
        self.done = not self.chunked and self._left == 0
        self.received = 0
        self.truncated = False
        self.on_piece: Callable[[bytes], None] | None = None

    def read(self, size: int = PIECE) -> bytes:
        """Up to `size` bytes of the body; b"" once it is over."""
        if self.done or (self.chunked and not self._next_chunk()):
            return b""
        piece = self.rfile.read(min(size, self._left))
        if not piece:
            self.done = self.truncated = True
            return b""
        self._left -= len(piece)
        self.received += len(piece)
        if self._left == 0:
            self._end_chunk()
        if self.on_piece:
            self.on_piece(piece)
        return piece

    def pieces(self, size: int = PIECE) -> Iterator[bytes]:
        """Every remaining piece of the body, in order."""
        while piece := self.read(size):
            yield piece

    def read_upto(self, limit: int | None = None) -> bytes:
        """The rest of the body, or only its first `limit` bytes (the rest stays unread)."""
        data = bytearray()
        while limit is None or len(data) < limit:
            piece = self.read(PIECE if limit is None else min(PIECE, limit - len(data)))
            if not piece:
                break
            data += piece
        return bytes(data)

    def drain(self) -> None:
        """Read and drop what is left, keeping the connection in step for the next request."""
        if self.done:
            return
        try:
            for _ in self.pieces():
                pass
        except (OSError, ValueError):  # a socket the fake itself closed or reset
            self.done = True

    def _next_chunk(self) -> bool:
        """Position on a chunk with bytes left; False (and done) at the last chunk."""
        if self._left:
            return True
        line = self.rfile.readline()
        size = int(line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            self._skip_trailers(line)
            self.done = True
            return False
        self._left = size
        return True

    def _end_chunk(self) -> None:
        """Step over the CRLF that ends a chunk; a plain body is over at its length."""
        if self.chunked:
            self.rfile.readline()
        else:
            self.done = True

    def _skip_trailers(self, size_line: bytes) -> None:
        self.truncated = size_line == b""
        if self.truncated:
            return
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
