"""Bytes on the socket: chunked bodies (optionally gzipped), stream framing, abrupt endings.

Upstream answers with `Transfer-Encoding: chunked`, so every non-empty body goes out that
way, one HTTP chunk per stream event, flushed at once so a relay can be observed chunk by chunk.
"""

import json
import select
import socket
import struct
import zlib
from http.server import BaseHTTPRequestHandler

CONTENT_TYPES = {"sse": "text/event-stream", "openai": "text/event-stream",
                 "array": "application/json; charset=UTF-8"}
UPSTREAM_HEADERS = (("Vary", "Origin, X-Origin, Referer"), ("X-XSS-Protection", "0"),
                    ("X-Frame-Options", "SAMEORIGIN"), ("X-Content-Type-Options", "nosniff"))


class ClientGone(Exception):
    """The peer closed the connection while the fake was still answering."""


class Wire:
    """Writes one HTTP response on a handler's connection."""

    def __init__(self, handler: BaseHTTPRequestHandler, gzip: bool) -> None:
        self.handler = handler
        self.sock: socket.socket = handler.connection
        accepts = handler.headers.get("Accept-Encoding", "")
        self._gzip = gzip and "gzip" in accepts
        self._zip = None
        self.started = False

    def head(self, status: int, content_type: str, length: int | None = None,
             extra: tuple[tuple[str, str], ...] = ()) -> None:
        """Send the status line and headers (plus `extra`); chunked unless `length` is given."""
        h = self.handler
        self.started = True
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        for name, value in UPSTREAM_HEADERS + extra:
            h.send_header(name, value)
        if length is not None:
            h.send_header("Content-Length", str(length))
        else:
            if self._gzip:
                self._zip = zlib.compressobj(wbits=31)
                h.send_header("Content-Encoding", "gzip")
            h.send_header("Transfer-Encoding", "chunked")
        self._guard(h.end_headers)

    def chunk(self, data: bytes) -> None:
        """Write and flush one HTTP chunk."""
        if self._zip is not None:
            data = self._zip.compress(data) + self._zip.flush(zlib.Z_SYNC_FLUSH)
        if data:
            self._send(b"%x\r\n%s\r\n" % (len(data), data))

    def end(self) -> None:
        """Finish a chunked body."""
        if self._zip is not None:
            tail, self._zip = self._zip.flush(), None
            self._send(b"%x\r\n%s\r\n" % (len(tail), tail))
        self._send(b"0\r\n\r\n")

    def body(self, status: int, data: bytes, content_type: str,
             extra: tuple[tuple[str, str], ...] = ()) -> None:
        """A whole response: chunked when there is a body, `Content-Length: 0` when empty."""
        if not data:
            self.head(status, content_type, length=0, extra=extra)
            return
        self.head(status, content_type, extra=extra)
        self.chunk(data)
        self.end()

    def json(self, status: int, payload: object, pretty: bool = True,
             extra: tuple[tuple[str, str], ...] = ()) -> None:
        """A JSON response, pretty-printed as upstream formats unary answers unless `pretty` is off."""
        self.body(status, _dumps(payload, indent=2 if pretty else None), CONTENT_TYPES["array"], extra=extra)

    def abort(self) -> None:
        """Close mid-body (FIN, no terminating chunk): the client sees a truncated stream."""
        self.handler.close_connection = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def reset(self) -> None:
        """Drop the connection with a TCP RST and no response at all."""
        self.handler.close_connection = True
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # socket.close() only releases the fd once the handler's file objects are closed too.
        self.handler.rfile.close()
        self.handler.wfile.close()
        self.sock.close()

    def peer_closed(self) -> bool:
        """Whether the client has closed its end (readable with nothing to read)."""
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
            return bool(readable) and self.sock.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _send(self, data: bytes) -> None:
        self._guard(lambda: self.handler.wfile.write(data))

    def _guard(self, write) -> None:
        try:
            write()
        except OSError as exc:
            self.handler.close_connection = True
            raise ClientGone() from exc


def frame(event: dict, framing: str, index: int, pretty: bool = True) -> bytes:
    """One stream event as upstream frames it (array elements compact when not `pretty`)."""
    if framing == "array":
        return (b"[" if index == 0 else b",\r\n") + _dumps(event, indent=2 if pretty else None)
    end = b"\r\n\r\n" if framing == "sse" else b"\n\n"
    return b"data: " + _dumps(event) + end


def trailer(framing: str, count: int) -> bytes:
    """What closes a stream that ended normally after `count` events."""
    if framing == "array":
        return b"]" if count else b"[]"
    return b"data: [DONE]\n\n" if framing == "openai" else b""


def error_frame(event: dict, framing: str, index: int) -> bytes:
    """An in-band error event after `index` events; for arrays it also closes the array."""
    return frame(event, framing, index) + (b"]" if framing == "array" else b"")


def _dumps(payload: dict, indent: int | None = None) -> bytes:
    separators = None if indent else (",", ":")
    return json.dumps(payload, indent=indent, separators=separators, ensure_ascii=False).encode()
