"""A loopback TCP relay a test can cut, black-hole and restore, standing in for an outage of what is behind it."""

import socket
import threading


class TcpRelay:
    """Forwards a loopback port to `target` until told otherwise.

    `cut()` refuses new connections and breaks open ones (a server that is down);
    `stall()` keeps accepting but forwards nothing either way (a server that never
    answers); `restore()` forwards again.
    """

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections: list[socket.socket] = []
        self.running = True
        self.stalled = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        """The relay as a Redis URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    def _accept(self) -> None:
        while self.running:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.running:
                client.close()
                return
            self.connections.append(client)
            if self.stalled:
                continue  # held open, never answered
            try:
                upstream = socket.create_connection(self.target, timeout=1)
                upstream.settimeout(None)
            except OSError:
                client.close()  # what is behind is down (e.g. restarting): the client is refused
                continue
            self.connections.append(upstream)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if not self.stalled:
                    sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        """Refuse new connections and break every open one."""
        self.running = False
        self.listener.close()
        self._break_all()

    def stall(self) -> None:
        """Accept connections and swallow everything: every call on them waits for its timeout."""
        self.stalled = True

    def restore(self) -> None:
        """Forward again (open connections made while stalled are broken, as a recovering server would)."""
        if self.stalled:
            self.stalled = False
            self._break_all()
        if not self.running:
            self.listener = socket.create_server(("127.0.0.1", self.port))
            self.running = True
            threading.Thread(target=self._accept, daemon=True).start()

    def _break_all(self) -> None:
        connections, self.connections = self.connections, []
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
