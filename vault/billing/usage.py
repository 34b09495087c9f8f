"""Reading token usage from upstream answers, whole or streamed, with Gemini's semantics.

- `promptTokenCount` already includes `cachedContentTokenCount`;
- `thoughtsTokenCount` is outside `candidatesTokenCount` and billed as output;
- `toolUsePromptTokenCount` is input-side;
- streamed `usageMetadata` is cumulative: the last one seen wins, chunks are never summed;
- `promptTokensDetails` / `cacheTokensDetails` split the prompt and its cached part by
  modality; AUDIO tokens are kept apart because Google prices them apart;
- a candidate's `groundingMetadata` from Google Search (`webSearchQueries`,
  `searchEntryPoint` or web `groundingChunks`) makes the request grounded, which Google
  bills per request or per search query; streamed, the most queries any chunk or candidate
  reports count (never a sum, as chunks repeat them).

Taps and whole-body readers also count the characters of candidate / choice text an answer
carries (`Evidence.output_chars`), for the estimate charged when no usage is reported
(`vault.billing.estimate`).

The OpenAI-compatible endpoint reports `usage` (prompt/completion/total); thinking tokens
show only in the total there, so they are what the total exceeds the two others by. It
reports no modality split (only OpenAI's own `prompt_tokens_details.audio_tokens`, read if
present) and no grounding metadata, so such calls pay the text rate and no grounding fee.
"""

import codecs
import json
import re
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Usage:
    """Tokens of one request by class."""

    prompt: int = 0
    cached: int = 0
    tool_prompt: int = 0
    candidates: int = 0
    thoughts: int = 0
    total: int = 0
    audio_prompt: int = 0
    audio_cached: int = 0
    grounding_queries: int = 0

    @property
    def output(self) -> int:
        """Billed output: candidates plus thoughts."""
        return self.candidates + self.thoughts

    @property
    def grounded(self) -> bool:
        """Whether Google Search grounded the answer."""
        return self.grounding_queries > 0

    def input_split(self) -> tuple[int, int, int, int]:
        """Input tokens by price: (uncached text, uncached audio, cached text, cached audio).

        Text here is every non-audio modality plus tool-use prompt tokens. Inconsistent counts
        are clamped so that the four add up to prompt plus tool-use tokens.
        """
        cached = min(self.cached, self.prompt)
        audio_cached = min(self.audio_cached, self.audio_prompt, cached)
        uncached = self.prompt - cached
        audio_uncached = min(max(self.audio_prompt - audio_cached, 0), uncached)
        return uncached - audio_uncached + self.tool_prompt, audio_uncached, cached - audio_cached, audio_cached


NO_USAGE = Usage()


@dataclass(frozen=True)
class Evidence:
    """What an answer (or the part of a stream relayed so far) showed of its usage: the last
    usage it reported (None if none), the most Search queries it showed, and the characters of
    candidate / choice text it carried (for an estimate when nothing was reported); for an
    images call, the images it held (`vault.proxy.images.images_returned`)."""

    reported: Usage | None = None
    grounding: int = 0
    output_chars: int = 0
    images: int = 0

    @property
    def usage(self) -> Usage:
        """The usage reported (NO_USAGE if none), marked with the grounding seen."""
        return with_grounding(self.reported or NO_USAGE, self.grounding)


def count(value: object) -> int:
    """A token count from JSON: non-negative int, anything else is 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def modality_count(details: object, modality: str) -> int:
    """Tokens of one modality in a `*TokensDetails` list (`[{"modality", "tokenCount"}, …]`)."""
    if not isinstance(details, list):
        return 0
    return sum(count(item.get("tokenCount")) for item in details
               if isinstance(item, dict) and item.get("modality") == modality)


def from_native(meta: dict) -> Usage:
    """Usage from a native `usageMetadata` object (missing fields are 0)."""
    prompt, candidates = count(meta.get("promptTokenCount")), count(meta.get("candidatesTokenCount"))
    thoughts, tool = count(meta.get("thoughtsTokenCount")), count(meta.get("toolUsePromptTokenCount"))
    total = count(meta.get("totalTokenCount")) or prompt + candidates + thoughts + tool
    cached = min(count(meta.get("cachedContentTokenCount")), prompt)
    audio = min(modality_count(meta.get("promptTokensDetails"), "AUDIO"), prompt)
    audio_cached = min(modality_count(meta.get("cacheTokensDetails"), "AUDIO"), cached, audio)
    return Usage(prompt, cached, tool, candidates, thoughts, total, audio, audio_cached)


def from_openai(usage: dict) -> Usage:
    """Usage from an OpenAI-shaped `usage` object (chat or embeddings)."""
    prompt, completion = count(usage.get("prompt_tokens")), count(usage.get("completion_tokens"))
    total = count(usage.get("total_tokens")) or prompt + completion
    details = usage.get("prompt_tokens_details")
    details = details if isinstance(details, dict) else {}
    cached, audio = min(count(details.get("cached_tokens")), prompt), min(count(details.get("audio_tokens")), prompt)
    return Usage(prompt, cached, 0, completion, max(total - prompt - completion, 0), total, audio)


def search_queries(meta: object) -> int:
    """Google Search queries one candidate's `groundingMetadata` shows (at least 1 if searched).

    Other grounding (Google Maps, file search) also fills `groundingMetadata` but is not a
    Search grounding: it counts 0.
    """
    if not isinstance(meta, dict):
        return 0
    queries = meta.get("webSearchQueries")
    queries = {query for query in queries if isinstance(query, str)} if isinstance(queries, list) else set()
    chunks = meta.get("groundingChunks")
    web = isinstance(chunks, list) and any(isinstance(chunk, dict) and "web" in chunk for chunk in chunks)
    searched = bool(queries) or meta.get("searchEntryPoint") is not None or web
    return max(len(queries), 1) if searched else 0


def grounding_of(payload: object) -> int:
    """The most Search queries any candidate of one response object or stream chunk reports."""
    candidates = payload.get("candidates") if isinstance(payload, dict) else None
    if not isinstance(candidates, list):
        return 0
    return max((search_queries(c.get("groundingMetadata")) for c in candidates if isinstance(c, dict)), default=0)


def from_payload(payload: object) -> Usage | None:
    """Usage carried by one response object or stream chunk, if it carries any."""
    if not isinstance(payload, dict):
        return None
    if isinstance(payload.get("usageMetadata"), dict):
        return from_native(payload["usageMetadata"])
    if isinstance(payload.get("usage"), dict):
        return from_openai(payload["usage"])
    return None


def with_grounding(usage: Usage, queries: int) -> Usage:
    """`usage` marked with the Search queries seen anywhere in the answer."""
    return usage if queries == usage.grounding_queries else replace(usage, grounding_queries=queries)


def text_chars(payload: object) -> int:
    """Characters of candidate (native) or choice (OpenAI) text in one response object or chunk."""
    if not isinstance(payload, dict):
        return 0
    chars = 0
    for candidate in payload.get("candidates") or ():
        content = candidate.get("content") if isinstance(candidate, dict) else None
        parts = content.get("parts") if isinstance(content, dict) else None
        chars += sum(len(part["text"]) for part in parts or () if isinstance(part, dict)
                     and isinstance(part.get("text"), str))
    for choice in payload.get("choices") or ():
        message = (choice.get("delta") or choice.get("message")) if isinstance(choice, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        chars += len(content) if isinstance(content, str) else 0
    return chars


def evidence_of_body(body: bytes) -> Evidence:
    """What a complete (non-streamed) JSON answer shows: its usage, grounding and text."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return Evidence()
    items = payload if isinstance(payload, list) else [payload]
    found = [usage for item in items if (usage := from_payload(item)) is not None]
    return Evidence(found[-1] if found else None, max(map(grounding_of, items), default=0),
                    sum(map(text_chars, items)))


def from_body(body: bytes) -> Usage:
    """Usage of a complete (non-streamed) JSON answer; NO_USAGE if it reports none and was not grounded."""
    return evidence_of_body(body).usage


class UsageTap:
    """What a stream has shown so far: the last usage reported, grounding, relayed text."""

    def __init__(self) -> None:
        self._usage: Usage | None = None
        self._grounding = 0
        self._chars = 0

    @property
    def usage(self) -> Usage:
        """The last usage reported, marked grounded if any chunk was."""
        return self.evidence.usage

    @property
    def evidence(self) -> Evidence:
        """Everything seen so far."""
        return Evidence(self._usage, self._grounding, self._chars)


class SseUsageTap(UsageTap):
    """Watches a server-sent-event stream and keeps the last usage reported (and any grounding),
    and counts the characters of candidate / choice text in its events."""

    def __init__(self) -> None:
        super().__init__()
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
            payload = json.loads(line[5:])
        except (ValueError, UnicodeDecodeError):
            return
        usage = from_payload(payload)
        if usage is not None:
            self._usage = usage
        self._grounding = max(self._grounding, grounding_of(payload))
        self._chars += text_chars(payload)


# `functionCall` is decoded whole only so that `text` keys in its arguments are not counted
# (`groundingMetadata` likewise hides its segments' `text`).
ARRAY_KEY = re.compile(r'"(usageMetadata|groundingMetadata|functionCall|text)"\s*:\s*')


class ArrayUsageTap(UsageTap):
    """Watches a streamed JSON array (native stream without `alt=sse`) for `usageMetadata`,
    `groundingMetadata` and the `text` of parts.

    Elements may be pretty-printed over many lines, so the tap looks for the keys and decodes
    the value after each once it is complete, keeping only the unread tail in memory.
    """

    def __init__(self) -> None:
        super().__init__()
        self._buffer = ""
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._decoder = json.JSONDecoder()

    def feed(self, chunk: bytes) -> None:
        self._buffer += self._utf8.decode(chunk)
        position = 0
        while match := ARRAY_KEY.search(self._buffer, position):
            try:
                value, position = self._decoder.raw_decode(self._buffer, match.end())
            except ValueError:
                self._buffer = self._buffer[match.start():]  # the value is not complete yet
                return
            self._take(match.group(1), value)
        self._buffer = self._buffer[position:][-64:]  # a key may be split across chunks

    def _take(self, key: str, value: object) -> None:
        if key == "usageMetadata" and isinstance(value, dict):
            self._usage = from_native(value)
        elif key == "groundingMetadata":
            self._grounding = max(self._grounding, search_queries(value))
        elif key == "text" and isinstance(value, str):
            self._chars += len(value)


EVENT_END = re.compile(rb"\r?\n\r?\n")


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
