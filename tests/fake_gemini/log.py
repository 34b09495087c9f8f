"""The fake's request log: every call as it reached the socket, and how it ended."""

import threading
import time
from dataclasses import dataclass, field

BODY_KEEP = 64 * 1024


@dataclass
class RecordedRequest:
    """One call received by the fake.

    What arrived: `method` (on the request line), `raw_path` (the path exactly as sent,
    percent-escapes and all) and `path` (its unquoted form, which routing uses),
    `request_target` (the whole request-line target), `query_string` (raw) and `query`
    (parsed), `headers` (lower-cased names, repeats joined with ", "), `header_list` (every
    pair, names lower-cased), `raw_headers` (every pair as sent, names in their own case),
    `raw_body`, and `body_bytes` (how many body bytes really arrived). On upload paths
    (`/upload/...`) `raw_body` keeps only the first `BODY_KEEP` (64 KiB) bytes, and an
    upload chunk's body is counted as it streams in; elsewhere it is the whole body.

    Credentials: `credentials` lists every one that reached the fake as (source, value), source
    "header", "query", "bearer", "authorization" or "access_token" (see `credentials.collect`);
    `key` is the key the call ran as and `key_source` where it came from ("header", "query",
    "bearer" or None).

    System parameters: `system_params` lists each one present as (where, name, value);
    `alt`, `field_mask`, `pretty_print` and `method_override` are what the fake applied, and
    `routed_method` is the method it routed on (`method`, or the override of a POST).

    Routing: `dialect`, `endpoint` (e.g. "generateContent", "files.upload.start",
    "files.upload.chunk", "files.list", "cachedContents.patch"), `version`, `model`, and
    `resource`, the `files/...` or `cachedContents/...` name in the path. Upload session
    calls (chunk, query, cancel) run with `key` None: their upload_id is the credential.

    `outcome` is "ok", "fault", "reset", "redirect", "died" (scripted death mid-stream),
    "error-event" (scripted in-band error), "client-disconnected" or
    "stopped" (the server stopped while the call was held). `usage` is the final usage the
    answer reported (native `usageMetadata` or OpenAI `usage`) after any field mask, so None
    when the mask dropped it, whether or not the answer was all sent.
    `outcome` and `finished` are set just after the last byte is written, so a client can see its answer first: wait on
    `done` before asserting them.
    """

    method: str
    path: str
    query_string: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    header_list: list[tuple[str, str]]
    raw_body: bytes
    raw_path: str = ""
    request_target: str = ""
    raw_headers: list[tuple[str, str]] = field(default_factory=list)
    json: object = None
    key: str | None = None
    key_source: str | None = None
    credentials: list[tuple[str, str]] = field(default_factory=list)
    system_params: list[tuple[str, str, str]] = field(default_factory=list)
    alt: str | None = None
    field_mask: str | None = None
    pretty_print: bool = True
    method_override: str | None = None
    routed_method: str | None = None
    body_bytes: int = 0
    resource: str | None = None
    dialect: str | None = None
    endpoint: str | None = None
    version: str | None = None
    model: str | None = None
    streamed: bool = False
    status: int | None = None
    outcome: str | None = None
    chunks_sent: int = 0
    usage: dict | None = None
    client_disconnected: bool = False
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def duration(self) -> float | None:
        """Seconds from the request's arrival to the end of its answer."""
        return None if self.finished is None else self.finished - self.started

    def note_body(self, piece: bytes) -> None:
        """Count body bytes read after the call was recorded, keeping at most `BODY_KEEP` of them."""
        self.body_bytes += len(piece)
        room = BODY_KEEP - len(self.raw_body)
        if room > 0:
            self.raw_body += piece[:room]

    def finish(self, outcome: str) -> None:
        """Mark the call as answered (first outcome wins) and wake waiters."""
        if self.outcome is None:
            self.outcome = outcome
        self.finished = time.monotonic()
        self.done.set()


class RequestLog:
    """A thread-safe, append-only list of `RecordedRequest` with waiting helpers."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._items: list[RecordedRequest] = []

    def append(self, item: RecordedRequest) -> None:
        """Record a call and wake anyone waiting for it."""
        with self._cond:
            self._items.append(item)
            self._cond.notify_all()

    def snapshot(self) -> list[RecordedRequest]:
        """A copy of the log in arrival order."""
        with self._cond:
            return list(self._items)

    def clear(self) -> None:
        """Forget every recorded call."""
        with self._cond:
            self._items.clear()

    def wait_for(self, count: int, timeout: float) -> bool:
        """Wait until at least `count` calls were recorded; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._items) >= count, timeout)
