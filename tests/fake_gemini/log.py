"""The fake's request log: every call as it reached the socket, and how it ended."""

import threading
import time
from dataclasses import dataclass, field


@dataclass
class RecordedRequest:
    """One call received by the fake.

    `headers` maps lower-cased names to values (repeats joined with ", "); `header_list`
    keeps the raw pairs. `key_source` is "header", "query", "bearer" or None. `outcome` is
    "ok", "fault", "reset", "died" (scripted death mid-stream), "error-event" (scripted
    in-band error), "client-disconnected" or
    "stopped" (the server stopped while the call was held). `usage` is the final usage the
    answer reported (native `usageMetadata` or OpenAI `usage`), whether or not it was all sent.
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
    json: object = None
    key: str | None = None
    key_source: str | None = None
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
