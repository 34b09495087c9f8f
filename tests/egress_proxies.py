"""Loopback forward proxies for egress tests: an HTTP proxy and a SOCKS5 proxy that record what they relay.

`HttpProxy` relays absolute-form requests (`GET http://host:port/path HTTP/1.1`, one per
connection: it asks the upstream to close after answering) and tunnels `CONNECT`.
`Socks5Proxy` speaks SOCKS5 `CONNECT` with no authentication or with a user name and
password. Both listen on 127.0.0.1, port 0, one thread per connection, and keep a
`Relay` per connection: where it went, the credentials it came with, and every byte the
client sent (so a test can read the request lines and keys that went through).
"""

import base64
import re
import socket
import struct
import threading
from dataclasses import dataclass, field

REQUEST_LINE = re.compile(rb"(GET|POST|PUT|PATCH|DELETE|HEAD) (\S+) HTTP/1\.[01]\r\n")
API_KEY_HEADER = re.compile(rb"(?im)^x-goog-api-key: *(\S+)\r$")
HOP_HEADERS = (b"connection", b"proxy-connection", b"keep-alive", b"proxy-authorization")


@dataclass
class Relay:
    """One relayed connection: its target, the proxy credentials given, and the client's bytes."""

    kind: str  # "forward", "connect" or "socks5"
    target: str  # host:port
    user: str | None = None
    password: str | None = None
    sent: bytearray = field(default_factory=bytearray, repr=False)

    def request_lines(self) -> list[tuple[str, str]]:
        """(method, target) of every HTTP request that went through."""
        return [(method.decode(), target.decode()) for method, target in REQUEST_LINE.findall(bytes(self.sent))]

    def api_keys(self) -> list[str]:
        return [key.decode() for key in API_KEY_HEADER.findall(bytes(self.sent))]


class LoopbackProxy:
    """A threaded TCP server on 127.0.0.1:0; subclasses serve one client connection in `serve`."""

    scheme = ""

    def __init__(self, credentials: tuple[str, str] | None = None):
        self.credentials = credentials
        self.relays: list[Relay] = []
        self.refused = 0
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._thread = threading.Thread(target=self._accept, daemon=True, name=f"{type(self).__name__}-accept")

    @property
    def port(self) -> int:
        return self._listener.getsockname()[1]

    def url(self, user: str | None = None, password: str | None = None) -> str:
        """The proxy's URL, with credentials if given."""
        auth = f"{user}:{password}@" if user is not None else ""
        return f"{self.scheme}://{auth}127.0.0.1:{self.port}"

    def start(self) -> "LoopbackProxy":
        self._thread.start()
        return self

    def stop(self) -> None:
        close(self._listener)  # shutting the listener down wakes the accepting thread
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            close(sock)
        self._thread.join(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def request_lines(self) -> list[tuple[str, str]]:
        """Every HTTP request line relayed, in order of connection."""
        with self._lock:
            return [line for relay in self.relays for line in relay.request_lines()]

    def api_keys(self) -> list[str]:
        with self._lock:
            return [key for relay in self.relays for key in relay.api_keys()]

    def _accept(self) -> None:
        while True:
            try:
                client, _address = self._listener.accept()
            except OSError:
                return
            self._track(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            self.serve(client)
        except OSError:
            pass
        finally:
            close(client)

    def serve(self, client: socket.socket) -> None:
        raise NotImplementedError

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def record(self, relay: Relay) -> Relay:
        with self._lock:
            self.relays.append(relay)
        return relay

    def refuse(self) -> None:
        with self._lock:
            self.refused += 1

    def connect(self, host: str, port: int) -> socket.socket:
        upstream = socket.create_connection((host, port), timeout=10)
        upstream.settimeout(None)
        self._track(upstream)
        return upstream

    def pipe(self, client: socket.socket, upstream: socket.socket, relay: Relay) -> None:
        """Copy bytes both ways until either side closes; the client's bytes are kept in `relay`."""
        back = threading.Thread(target=copy, args=(upstream, client, None), daemon=True)
        back.start()
        copy(client, upstream, relay)
        back.join(30)
        close(upstream)


class HttpProxy(LoopbackProxy):
    """An HTTP forward proxy: absolute-form requests for http:// targets, and CONNECT tunnels."""

    scheme = "http"

    def serve(self, client: socket.socket) -> None:
        head, rest = read_head(client)
        request_line, *header_lines = head.split(b"\r\n")
        method, target, version = request_line.split(b" ", 2)
        user, password = self.basic_auth(header_lines)
        if self.credentials and (user, password) != self.credentials:
            self.refuse()
            client.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n"
                           b"Content-Length: 0\r\nConnection: close\r\n\r\n")
            return
        if method == b"CONNECT":
            self.tunnel(client, target.decode(), user, password, rest)
        else:
            self.forward(client, method, target.decode(), version, header_lines, user, password, rest)

    @staticmethod
    def basic_auth(header_lines: list[bytes]) -> tuple[str | None, str | None]:
        for line in header_lines:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"proxy-authorization":
                scheme, _, encoded = value.strip().partition(b" ")
                user, _, password = base64.b64decode(encoded).decode().partition(":")
                return user, password
        return None, None

    def tunnel(self, client, target: str, user, password, rest: bytes) -> None:
        host, _, port = target.rpartition(":")
        relay = self.record(Relay("connect", target, user, password))
        upstream = self.connect(host, int(port))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        if rest:
            upstream.sendall(rest)
        self.pipe(client, upstream, relay)

    def forward(self, client, method: bytes, target: str, version: bytes, header_lines, user, password,
                rest: bytes) -> None:
        match = re.match(r"http://([^/:]+):(\d+)(/.*)?$", target)
        relay = self.record(Relay("forward", f"{match[1]}:{match[2]}", user, password))
        relay.sent += b" ".join((method, target.encode(), version)) + b"\r\n"
        kept = [line for line in header_lines if line.partition(b":")[0].strip().lower() not in HOP_HEADERS]
        relay.sent += b"\r\n".join(kept) + b"\r\n\r\n" + rest
        upstream = self.connect(match[1], int(match[2]))
        head = b" ".join((method, (match[3] or "/").encode(), version))
        upstream.sendall(b"\r\n".join([head, *kept, b"Connection: close", b"", b""]) + rest)
        back = threading.Thread(target=copy, args=(client, upstream, relay), daemon=True)
        back.start()
        # One request per connection: the client must not reuse it, so the answer says so.
        answer, body = read_head(upstream)
        status, *answer_lines = answer.split(b"\r\n")
        kept = [line for line in answer_lines if line.partition(b":")[0].strip().lower() not in HOP_HEADERS]
        client.sendall(b"\r\n".join([status, *kept, b"Connection: close", b"", b""]) + body)
        copy(upstream, client, None)
        back.join(30)
        close(upstream)


class Socks5Proxy(LoopbackProxy):
    """A SOCKS5 proxy (CONNECT only): no authentication, or user name and password when `credentials` is set."""

    scheme = "socks5"

    def serve(self, client: socket.socket) -> None:
        version, count = struct.unpack("!BB", recv_exact(client, 2))
        methods = recv_exact(client, count)
        wanted = 2 if self.credentials else 0
        if version != 5 or wanted not in methods:
            client.sendall(b"\x05\xff")
            self.refuse()
            return
        client.sendall(bytes([5, wanted]))
        user, password = self.authenticate(client) if self.credentials else (None, None)
        if self.credentials and (user, password) != self.credentials:
            return
        host, port = read_target(client)
        relay = self.record(Relay("socks5", f"{host}:{port}", user, password))
        upstream = self.connect(host, port)
        client.sendall(b"\x05\x00\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack("!H", port))
        self.pipe(client, upstream, relay)

    def authenticate(self, client: socket.socket) -> tuple[str, str]:
        """RFC 1929: user name and password; answers success only for `credentials`."""
        _version, length = recv_exact(client, 2)
        user = recv_exact(client, length).decode()
        password = recv_exact(client, recv_exact(client, 1)[0]).decode()
        good = (user, password) == self.credentials
        if not good:
            self.refuse()
        client.sendall(b"\x01\x00" if good else b"\x01\x01")
        return user, password


def read_target(client: socket.socket) -> tuple[str, int]:
    """The host and port of a SOCKS5 CONNECT request (IPv4, domain name or IPv6)."""
    _version, command, _reserved, kind = recv_exact(client, 4)
    assert command == 1, "only CONNECT"
    if kind == 1:
        host = socket.inet_ntoa(recv_exact(client, 4))
    elif kind == 3:
        host = recv_exact(client, recv_exact(client, 1)[0]).decode()
    else:
        host = socket.inet_ntop(socket.AF_INET6, recv_exact(client, 16))
    return host, struct.unpack("!H", recv_exact(client, 2))[0]


def read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """An HTTP request head (without its blank line) and whatever body bytes came with it."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            raise OSError("closed before the head ended")
        data += piece
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def recv_exact(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        piece = sock.recv(count - len(data))
        if not piece:
            raise OSError("closed early")
        data += piece
    return data


def copy(source: socket.socket, target: socket.socket, relay: Relay | None) -> None:
    """Copy until `source` ends, then end `target`'s writing side."""
    try:
        while piece := source.recv(65536):
            if relay is not None:
                relay.sent += piece
            target.sendall(piece)
    except OSError:
        pass
    try:
        target.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
