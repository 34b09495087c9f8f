"""Reading token usage from upstream answers, whole or streamed, with Gemini's semantics.

- `promptTokenCount` already includes `cachedContentTokenCount`;
- `thoughtsTokenCount` is outside `candidatesTokenCount` and billed as output;
- `toolUsePromptTokenCount` is input-side;
- streamed `usageMetadata` is cumulative: the last one seen wins, chunks are never summed.

The OpenAI-compatible endpoint reports `usage` (prompt/completion/total); thinking tokens
show only in the total there, so they are what the total exceeds the two others by.
"""

import json
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Usage:
    """Tokens of one request by class."""

    prompt: int = 0
    cached: int = 0
    tool_prompt: int = 0
    candidates: int = 0
    thoughts: int = 0
    total: int = 0

    @property
    def output(self) -> int:
        """Billed output: candidates plus thoughts."""
        return self.candidates + self.thoughts


NO_USAGE = Usage()


def count(value: object) -> int:
    """A token count from JSON: non-negative int, anything else is 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def from_native(meta: dict) -> Usage:
    """Usage from a native `usageMetadata` object (missing fields are 0)."""
    prompt, candidates = count(meta.get("promptTokenCount")), count(meta.get("candidatesTokenCount"))
    thoughts, tool = count(meta.get("thoughtsTokenCount")), count(meta.get("toolUsePromptTokenCount"))
    total = count(meta.get("totalTokenCount")) or prompt + candidates + thoughts + tool
    return Usage(prompt, min(count(meta.get("cachedContentTokenCount")), prompt), tool, candidates, thoughts, total)


def from_openai(usage: dict) -> Usage:
    """Usage from an OpenAI-shaped `usage` object (chat or embeddings)."""
    prompt, completion = count(usage.get("prompt_tokens")), count(usage.get("completion_tokens"))
    total = count(usage.get("total_tokens")) or prompt + completion
    details = usage.get("prompt_tokens_details")
    cached = count(details.get("cached_tokens")) if isinstance(details, dict) else 0
    return Usage(prompt, min(cached, prompt), 0, completion, max(total - prompt - completion, 0), total)


def from_payload(payload: object) -> Usage | None:
    """Usage carried by one response object or stream chunk, if it carries any."""
    if not isinstance(payload, dict):
        return None
    if isinstance(payload.get("usageMetadata"), dict):
        return from_native(payload["usageMetadata"])
    if isinstance(payload.get("usage"), dict):
        return from_openai(payload["usage"])
    return None


def from_body(body: bytes) -> Usage:
    """Usage of a complete (non-streamed) JSON answer; NO_USAGE if it reports none."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return NO_USAGE
    if isinstance(payload, list):
        found = [usage for item in payload if (usage := from_payload(item)) is not None]
        return found[-1] if found else NO_USAGE
    return from_payload(payload) or NO_USAGE


class SseUsageTap:
    """Watches a server-sent-event stream and keeps the last usage reported."""

    def __init__(self) -> None:
        self.usage = NO_USAGE
        self._pending = b""

    def feed(self, chunk: bytes) -> None:
        lines = (self._pending + chunk).split(b"\n")
        self._pending = lines.pop()
        for line in lines:
            self._read_line(line.strip())

    def _read_line(self, line: bytes) -> None:
        if not line.startswith(b"data:"):
            return
        try:
            usage = from_payload(json.loads(line[5:]))
        except (ValueError, UnicodeDecodeError):
            return
        if usage is not None:
            self.usage = usage


USAGE_KEY = re.compile(rb'"usageMetadata"\s*:\s*')
EVENT_END = re.compile(rb"\r?\n\r?\n")


class ArrayUsageTap:
    """Watches a streamed JSON array (native stream without `alt=sse`) for `usageMetadata`.

    Elements may be pretty-printed over many lines, so the tap looks for the key and decodes
    the object after it once it is complete, keeping only the unread tail in memory.
    """

    def __init__(self) -> None:
        self.usage = NO_USAGE
        self._buffer = b""
        self._decoder = json.JSONDecoder()

    def feed(self, chunk: bytes) -> None:
        self._buffer += chunk
        while match := USAGE_KEY.search(self._buffer):
            rest = self._buffer[match.end():].decode("utf-8", errors="replace")
            try:
                meta, end = self._decoder.raw_decode(rest)
            except ValueError:
                self._buffer = self._buffer[match.start():]  # the object is not complete yet
                return
            if isinstance(meta, dict):
                self.usage = from_native(meta)
            self._buffer = rest[end:].encode()
        self._buffer = self._buffer[-64:]  # the key may be split across chunks


class OpenAIUsageStripper:
    """Removes `usage` from OpenAI stream events for a client that did not ask for it.

    The Vault asks the upstream for usage on every stream so that it can bill; a client that
    did not set `stream_options.include_usage` gets the stream it expected. Works event by
    event, so chunks still flow as they arrive.
    """

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, chunk: bytes) -> bytes:
        """The complete events of `chunk`, rewritten; a partial event waits for its end."""
        parts = EVENT_END.split(self._pending + chunk)
        self._pending = parts.pop()
        kept = (self._rewrite(event) for event in parts)
        return b"".join(event + b"\n\n" for event in kept if event is not None)

    def flush(self) -> bytes:
        """Whatever is left when the stream ends."""
        rest, self._pending = self._pending, b""
        return rest

    @staticmethod
    def _rewrite(event: bytes) -> bytes | None:
        body = event.strip()
        if not body.startswith(b"data:") or b'"usage"' not in body:
            return event
        try:
            payload = json.loads(body[5:])
        except (ValueError, UnicodeDecodeError):
            return event
        if not isinstance(payload, dict) or "usage" not in payload:
            return event
        if not payload.get("choices"):
            return None  # a usage-only chunk: the client never asked for it
        payload.pop("usage")
        return b"data: " + json.dumps(payload, separators=(",", ":")).encode()
