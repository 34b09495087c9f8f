"""What a test can tell the fake to do next: replies, gates, hangs, resets, redirects, the queue.

A test queues actions on a `FakeGemini` (see `FakeGemini.enqueue`). Each incoming call takes
the first queued action whose key, model and endpoint match; an action queued with
`times=None` stays forever but yields to any matching finite entry.
"""

import html
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from tests.fake_gemini.faults import Fault, unavailable

GENERATING = {"generateContent", "streamGenerateContent", "openai.chat", "openai.images"}


class Gate:
    """Holds a stream before every chunk after the first until the test lets it pass.

    `release(n)` lets n more chunks out, `open()` lets everything out. The counters let a
    test wait, without sleeping, until the server has flushed a chunk or is blocked here.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._permits = 0
        self._open = False
        self._sent = 0
        self._waiting = False

    def release(self, n: int = 1) -> None:
        """Let `n` more chunks through."""
        with self._cond:
            self._permits += n
            self._cond.notify_all()

    def open(self) -> None:
        """Let every remaining chunk through."""
        with self._cond:
            self._open = True
            self._cond.notify_all()

    @property
    def sent(self) -> int:
        """How many chunks have been written to the socket so far."""
        with self._cond:
            return self._sent

    def wait_sent(self, n: int, timeout: float = 5.0) -> bool:
        """Wait until `n` chunks have been flushed; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._sent >= n, timeout)

    def wait_blocked(self, timeout: float = 5.0) -> bool:
        """Wait until the stream is held at the gate; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._waiting, timeout)

    def pass_once(self, poll: float) -> bool:
        """Server side: take one permit, waiting at most `poll` seconds."""
        with self._cond:
            self._waiting = True
            self._cond.notify_all()
            if not self._cond.wait_for(lambda: self._open or self._permits > 0, poll):
                return False
            self._waiting = False
            if not self._open:
                self._permits -= 1
            return True

    def mark_sent(self) -> None:
        """Server side: one more chunk reached the socket."""
        with self._cond:
            self._sent += 1
            self._cond.notify_all()


class Hang:
    """Never answers until `release()` (then answers normally) or the server stops."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.started = threading.Event()

    def release(self) -> None:
        """Let every call held by this hang go on with a normal answer."""
        self.released.set()

    def wait_started(self, timeout: float = 5.0) -> bool:
        """Wait until some call is being held; False on timeout."""
        return self.started.wait(timeout)


@dataclass(frozen=True)
class Reset:
    """Drops the connection without sending any response: a TCP RST, or a plain close (FIN)."""

    rst: bool = True


@dataclass(frozen=True)
class Redirect:
    """Answers with a redirect to `location` (301, 302, 303, 307 or 308) instead of the call.

    The body is the small HTML page Google's front end sends with its redirects.
    """

    status: int = 302
    location: str = "https://evil.example/steal"

    def __post_init__(self) -> None:
        if self.status not in (301, 302, 303, 307, 308):
            raise ValueError(f"not a redirect status: {self.status}")

    def body(self) -> bytes:
        """The HTML body that goes with the redirect."""
        title = {301: "Moved Permanently", 303: "See Other", 307: "Temporary Redirect",
                 308: "Permanent Redirect"}.get(self.status, "Moved")
        href = html.escape(self.location)
        return ('<HTML><HEAD><meta http-equiv="content-type" content="text/html;charset=utf-8">\n'
                f"<TITLE>{self.status} {title}</TITLE></HEAD><BODY>\n<H1>{self.status} {title}</H1>\n"
                f'The document has moved\n<A HREF="{href}">here</A>.\r\n</BODY></HTML>\r\n').encode()


@dataclass
class Reply:
    """How a successful generation looks. Token counts are whitespace-split words.

    :param text: the answer; None echoes the last user text as "Echo: <text>".
    :param chunks: how many stream chunks (capped by the word count) unless `chunk_texts`.
    :param chunk_texts: exact text of each stream chunk; joined, they form the answer.
    :param blocked: a promptFeedback blockReason ("SAFETY"): 200 with no candidates.
    :param delay: seconds before the response starts; `chunk_delay` between chunks.
    :param gate: holds each chunk after the first until the test releases it.
    :param die_after: close the socket abruptly after this many chunks.
    :param error_after: send `error` as an in-band event after this many chunks, then end.
    :param audio_tokens: prompt tokens reported as AUDIO in `promptTokensDetails` (added to the prompt).
    :param search_queries: ground the answer with Google Search: the last (or only) response's
        candidate carries `groundingMetadata` with these `webSearchQueries`.
    :param report_usage: False leaves `usageMetadata` / `usage` out of every response and chunk.
    :param images: an images call's answer holds at most this many images (None: as many as asked;
        fewer is what Imagen does when its safety filter drops some).
    :param image_bytes: pad each generated PNG to at least this many bytes (a large answer).
    """

    text: str | None = None
    chunks: int = 3
    chunk_texts: Sequence[str] | None = None
    finish_reason: str = "STOP"
    thoughts_tokens: int = 0
    cached_tokens: int = 0
    tool_use_prompt_tokens: int = 0
    audio_tokens: int = 0
    search_queries: Sequence[str] | None = None
    report_usage: bool = True
    blocked: str | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    gate: Gate | None = None
    die_after: int | None = None
    error_after: int | None = None
    error: Fault = field(default_factory=unavailable)
    images: int | None = None
    image_bytes: int = 0


Action = Fault | Hang | Reset | Redirect | Reply


@dataclass
class Entry:
    """One queued action and the calls it applies to (None matches anything)."""

    action: Action
    key: str | None = None
    model: str | None = None
    endpoint: str | None = None
    times: int | None = 1

    def matches(self, key: str | None, model: str | None, endpoint: str) -> bool:
        """Whether a call with these attributes should take this entry."""
        if isinstance(self.action, Reply) and endpoint not in GENERATING:
            return False
        return all(want is None or want == got for want, got in
                   ((self.key, key), (bare_model(self.model), model), (self.endpoint, endpoint)))


class Script:
    """The thread-safe queue of scripted actions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[Entry] = []

    def add(self, entry: Entry) -> None:
        """Append an entry at the end of the queue."""
        with self._lock:
            self._entries.append(entry)

    def take(self, key: str | None, model: str | None, endpoint: str) -> Action | None:
        """Consume and return the action for this call, finite entries first."""
        with self._lock:
            found = [e for e in self._entries if e.matches(key, model, endpoint)]
            entry = next((e for e in found if e.times is not None), found[0] if found else None)
            if entry is None:
                return None
            if entry.times is not None:
                entry.times -= 1
                if entry.times <= 0:
                    self._entries.remove(entry)
            return entry.action

    def clear(self) -> list[Entry]:
        """Empty the queue and return what was in it."""
        with self._lock:
            entries, self._entries = self._entries, []
            return entries

    def pending(self) -> list[Entry]:
        """A snapshot of the entries still queued."""
        with self._lock:
            return list(self._entries)


def bare_model(name: str | None) -> str | None:
    """`models/gemini-2.5-flash` and `gemini-2.5-flash` both become `gemini-2.5-flash`."""
    return name.removeprefix("models/") if name else name
