"""`FakeGemini`: a real loopback HTTP server that speaks Gemini's wire format, scriptable per key.

Keys: every key registered with `add_key` (or the `keys` argument) is valid; with
`accept_any_aiza=True` (the default) any other key starting with "AIza" is valid too, except
keys passed to `remove_key`. Anything else gets 400 API_KEY_INVALID; no key gets 403.

Each key stands for its own Google project: files and cached contents belong to the key
that made them (through the API or `add_file` / `add_cached_content`), and naming them with
another key is a 403.

Besides the model methods and the OpenAI-compatible endpoints, the fake speaks Google's
Files API and cachedContents API:
- `POST /upload/{v}/files`: resumable uploads (start with a key, then the session URL the
  fake hands out, `{base_url}/upload/{v}/files?upload_id=...&upload_protocol=resumable`,
  takes upload / finalize / query / cancel with no key) and multipart uploads
  (`uploadType=multipart`). Upload bytes are streamed, never held whole (see `uploads.py`);
  `uploads` tracks every session and its received byte count.
- `GET /{v}/files`, `GET|DELETE /{v}/files/{id}` (see `files.py`).
- `POST|GET /{v}/cachedContents`, `GET|PATCH|DELETE /{v}/cachedContents/{id}` (see `caches.py`).
"""

import itertools
import socket
import threading
import time
from collections.abc import Iterable
from http.server import ThreadingHTTPServer

from tests.fake_gemini.handler import Handler
from tests.fake_gemini.log import RecordedRequest, RequestLog
from tests.fake_gemini.payloads import DEFAULT_MODELS, model_resource
from tests.fake_gemini.resources import ResourceStore
from tests.fake_gemini.script import Action, Entry, Gate, Hang, Reply, Script
from tests.fake_gemini.uploads import Upload, Uploads

STOP_JOIN_SECONDS = 5.0


class _HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that keeps track of its connections and handler threads."""

    daemon_threads = True
    block_on_close = False
    # Bursts of hundreds of connections must queue, not be refused (socketserver's default is 5).
    request_queue_size = 1024

    def __init__(self, fake: "FakeGemini") -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.fake = fake
        self._lock = threading.Lock()
        self.connections: set[socket.socket] = set()
        self.threads: set[threading.Thread] = set()
        self.total_connections = 0

    def process_request(self, request: socket.socket, client_address) -> None:
        """Serve each connection on its own daemon thread, remembering both."""
        thread = threading.Thread(target=self._serve_connection, args=(request, client_address),
                                  name="fake-gemini-conn", daemon=True)
        with self._lock:
            self.connections.add(request)
            self.threads.add(thread)
            self.total_connections += 1
        thread.start()

    def _serve_connection(self, request: socket.socket, client_address) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._lock:
                self.connections.discard(request)
                self.threads.discard(threading.current_thread())

    def handle_error(self, request, client_address) -> None:
        """A connection torn down by a test (reset, stop) is expected, not an error."""

    def close_all(self) -> list[threading.Thread]:
        """Shut every open connection down; return the threads still serving."""
        with self._lock:
            connections, threads = list(self.connections), list(self.threads)
        for sock in connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return threads


class FakeGemini:
    """A scriptable fake of generativelanguage.googleapis.com on 127.0.0.1.

    :param keys: keys registered as valid from the start.
    :param accept_any_aiza: also accept any unregistered key starting with "AIza".
    :param models: bare model ids to serve instead of the default catalog.
    :param reply: how successful generations look unless a `Reply` is queued.
    :param latency: seconds added before every answer (benchmarks).
    :param embedding_dim: vector size when a request does not ask for one.
    :param gzip: gzip bodies for clients that send `Accept-Encoding: gzip`, as upstream does.

    Observe it through `calls` / `requests_for` / `wait_for_calls` (the request log),
    `disconnects` / `disconnected` (clients that left mid-answer), `open_connections`,
    `server_errors` (tracebacks of the fake's own crashes, answered with 500 INTERNAL),
    `resources` / `files_of` / `cached_contents_of` (each key's files and caches) and
    `uploads` / `upload` (resumable upload sessions and the bytes each received).
    """

    def __init__(self, keys: Iterable[str] = (), *, accept_any_aiza: bool = True,
                 models: Iterable[str] | None = None, reply: Reply | None = None,
                 latency: float = 0.0, embedding_dim: int = 8, gzip: bool = False) -> None:
        self._keys = set(keys)
        self._removed: set[str] = set()
        self.accept_any_aiza = accept_any_aiza
        self.default_reply = reply or Reply()
        self.latency = latency
        self.embedding_dim = embedding_dim
        self.gzip = gzip
        self.catalog = _catalog(models)
        self.resources = ResourceStore()
        self.uploads = Uploads()
        self.disconnected = threading.Event()
        self.server_errors: list[str] = []
        self._disconnects = 0
        self._script = Script()
        self._log = RequestLog()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._key_ids = itertools.count(1)
        self._blockers: list[Gate | Hang] = []
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None

    # lifecycle

    def start(self) -> "FakeGemini":
        """Bind a free loopback port and serve on a daemon thread."""
        self._httpd = _HTTPServer(self)
        # `stop()` waits for the serving loop's next poll: a short one keeps every test's teardown short.
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.005},
                         name="fake-gemini", daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving, release every held call and close every connection; never hangs."""
        if self._httpd is None:
            return
        httpd, self._httpd = self._httpd, None
        self._stopping.set()
        self.release_all()
        httpd.shutdown()
        deadline = time.monotonic() + STOP_JOIN_SECONDS
        for thread in httpd.close_all():
            thread.join(max(0.0, deadline - time.monotonic()))
        httpd.server_close()

    def __enter__(self) -> "FakeGemini":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port picked at start."""
        if self._httpd is None:
            raise RuntimeError("FakeGemini is not running")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT`, the root the native SDK's base_url takes."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """The base URL of the OpenAI-compatible endpoint, with its trailing slash."""
        return f"{self.base_url}/v1beta/openai/"

    # keys and models

    def add_key(self, key: str) -> str:
        """Register `key` as valid (it also undoes `remove_key`)."""
        with self._lock:
            self._keys.add(key)
            self._removed.discard(key)
        return key

    def new_key(self) -> str:
        """Mint, register and return a fresh 39-character `AIza...` key."""
        return self.add_key(f"AIzaSyFAKE{next(self._key_ids):029d}")

    def remove_key(self, key: str) -> None:
        """Make `key` invalid from now on (400 API_KEY_INVALID), even if it starts with AIza."""
        with self._lock:
            self._keys.discard(key)
            self._removed.add(key)

    def key_valid(self, key: str | None) -> bool:
        """Whether upstream would accept this key."""
        with self._lock:
            if key is None or key in self._removed:
                return False
            return key in self._keys or (self.accept_any_aiza and key.startswith("AIza"))

    def add_file(self, key: str, name: str | None = None, **fields) -> str:
        """A file owned by `key`'s project; returns its name ("files/file00000001").

        `name` may be "files/abc" or "abc"; other keywords (mime_type, size_bytes, or any
        File field) shape the stored resource (`resources.get(name)`).
        """
        return self.resources.add_file(key, name, **fields)

    def add_cached_content(self, key: str, model: str = "gemini-2.5-flash", name: str | None = None,
                           **fields) -> str:
        """A cached content for `model` owned by `key`'s project; returns its name."""
        return self.resources.add_cached_content(key, model, name, **fields)

    def files_of(self, key: str) -> list[dict]:
        """The live File resources `key`'s project owns, oldest first."""
        return self.resources.owned_by(key, "files")

    def cached_contents_of(self, key: str) -> list[dict]:
        """The live CachedContent resources `key`'s project owns, oldest first."""
        return self.resources.owned_by(key, "cachedContents")

    def upload(self, upload_id: str | None = None) -> Upload | None:
        """The resumable upload with this id (any state), or the latest one when no id is given.

        `upload(...).received` is the byte count it has received so far; `state`, `key`,
        `declared_size`, `chunks` and `file_name` tell the rest.
        """
        return self.uploads.get(upload_id) if upload_id else self.uploads.latest()

    def add_model(self, name: str, display: str | None = None, thinking: bool = False) -> None:
        """Serve one more model (a bare id such as "gemini-3-pro")."""
        self.catalog[name] = model_resource(name, display or name, thinking)

    # scripting

    def enqueue(self, action: Action, *, key: str | None = None, model: str | None = None,
                endpoint: str | None = None, times: int | None = 1) -> Action:
        """Make the next `times` matching calls get `action` (None = forever); returns it.

        `key`, `model` (bare or `models/`-prefixed) and `endpoint` narrow which calls match;
        None matches anything. Endpoints: generateContent, streamGenerateContent, countTokens,
        embedContent, batchEmbedContents, listModels, getModel, openai.chat,
        openai.embeddings, openai.listModels, openai.getModel, files.upload.start,
        files.upload.chunk, files.upload.query, files.upload.cancel, files.upload.multipart,
        files.list, files.get, files.delete, cachedContents.create, cachedContents.list,
        cachedContents.get, cachedContents.patch, cachedContents.delete. A `Reply` only applies to
        generating endpoints; a `Fault`, `Redirect`, `Hang` or `Reset` to any.
        """
        gate = action.gate if isinstance(action, Reply) else None
        with self._lock:
            self._blockers.extend(b for b in (gate, action) if isinstance(b, Gate | Hang))
        self._script.add(Entry(action, key, model, endpoint, times))
        return action

    def hang(self, **match) -> Hang:
        """Queue a `Hang` (same keywords as `enqueue`) and return it."""
        return self.enqueue(Hang(), **match)

    def gated(self, reply: Reply | None = None, **match) -> Gate:
        """Queue a stream held after its first chunk (same keywords as `enqueue`); return its gate."""
        reply = reply or Reply()
        reply.gate = reply.gate or Gate()
        self.enqueue(reply, **match)
        return reply.gate

    def pending(self) -> list[Entry]:
        """The scripted entries not consumed yet."""
        return self._script.pending()

    def clear_script(self) -> None:
        """Drop every queued action."""
        self._script.clear()

    def release_all(self) -> None:
        """Release every hang and open every gate handed out so far."""
        with self._lock:
            blockers, self._blockers = self._blockers, []
        for blocker in blockers:
            if isinstance(blocker, Gate):
                blocker.open()
            else:
                blocker.release()

    def reset(self) -> None:
        """Forget the log, the script, server errors and disconnects; release held calls.

        Keys, resources (files, cached contents) and uploads stay, as a project's state would.
        """
        self.release_all()
        self._script.clear()
        self._log.clear()
        self.server_errors.clear()
        with self._lock:
            self._disconnects = 0
        self.disconnected.clear()

    # observation

    @property
    def calls(self) -> list[RecordedRequest]:
        """Every request received so far, in arrival order."""
        return self._log.snapshot()

    @property
    def last_request(self) -> RecordedRequest | None:
        """The most recent request, or None."""
        calls = self.calls
        return calls[-1] if calls else None

    def requests_for(self, key: str) -> list[RecordedRequest]:
        """The requests that used `key`, however it was sent."""
        return [r for r in self.calls if r.key == key]

    def wait_for_calls(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until `count` requests have arrived; False on timeout."""
        return self._log.wait_for(count, timeout)

    @property
    def disconnects(self) -> int:
        """How many calls saw their client go away before the answer was complete."""
        with self._lock:
            return self._disconnects

    def wait_disconnect(self, timeout: float = 5.0) -> bool:
        """Wait until some client disconnected mid-answer; False on timeout."""
        return self.disconnected.wait(timeout)

    @property
    def open_connections(self) -> int:
        """Client connections currently open (keep-alive ones included)."""
        return len(self._httpd.connections) if self._httpd else 0

    @property
    def total_connections(self) -> int:
        """Client connections accepted since start."""
        return self._httpd.total_connections if self._httpd else 0

    # used by the handler

    def _note_disconnect(self, rec: RecordedRequest) -> None:
        rec.client_disconnected = True
        rec.finish("client-disconnected")
        with self._lock:
            self._disconnects += 1
        self.disconnected.set()

    def _next_response_id(self) -> str:
        return f"fakeResp{next(self._ids):012d}"


def _catalog(models: Iterable[str] | None) -> dict[str, dict]:
    """Bare model id → native model resource, in listing order."""
    known = {name: (display, thinking) for name, display, thinking in DEFAULT_MODELS}
    names = list(models) if models is not None else list(known)
    return {n: model_resource(n, *known.get(n, (n, False))) for n in names}
