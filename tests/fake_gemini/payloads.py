"""Deterministic Gemini payloads: token counts, responses, stream chunks, models, embeddings.

Token counting is whitespace-split words of every text part (system instruction included),
at least 1 for a prompt. Usage follows Gemini's semantics: `promptTokenCount` includes the
cached tokens, thoughts are outside the candidates, and `totalTokenCount` = prompt +
candidates + thoughts + toolUsePrompt. Zero-valued usage fields are left out, as upstream does.
"""

import base64
import hashlib
import re
import struct
import time
import zlib

from tests.fake_gemini.script import Reply

DEFAULT_MODELS = (
    ("gemini-2.5-flash", "Gemini 2.5 Flash", True),
    ("gemini-2.5-pro", "Gemini 2.5 Pro", True),
    ("gemini-2.5-flash-lite", "Gemini 2.5 Flash-Lite", True),
    ("gemini-2.0-flash", "Gemini 2.0 Flash", False),
    ("gemini-embedding-001", "Gemini Embedding 001", False),
)
GENERATE_METHODS = ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"]
EMBED_METHODS = ["embedContent", "countTextTokens", "countTokens", "asyncBatchEmbedContent"]
FINISH_TO_OPENAI = {"STOP": "stop", "MAX_TOKENS": "length", "MALFORMED_FUNCTION_CALL": "tool_calls"}


def count_words(text: str) -> int:
    """Whitespace-split word count: the fake's token unit."""
    return len(text.split())


def parts_text(content: dict | None) -> str:
    """The text parts of one Content, joined by spaces."""
    parts = (content or {}).get("parts") or []
    return " ".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))


def prompt_tokens(contents: list, system: dict | None = None) -> int:
    """Tokens of every text part in `contents` plus the system instruction, at least 1."""
    texts = [parts_text(c) for c in contents if isinstance(c, dict)] + [parts_text(system)]
    return max(1, sum(count_words(t) for t in texts))


def last_user_text(contents: list) -> str:
    """The text of the last content sent by the user (or with no role)."""
    users = [c for c in contents if isinstance(c, dict) and c.get("role", "user") == "user"]
    return parts_text(users[-1]) if users else ""


def answer_text(reply: Reply, prompt: str) -> str:
    """The reply text: scripted chunks, a fixed text, or an echo of the prompt."""
    if reply.chunk_texts is not None:
        return "".join(reply.chunk_texts)
    return reply.text if reply.text is not None else f"Echo: {prompt}".strip()


def truncate(text: str, max_tokens: int | None) -> tuple[str, bool]:
    """Cut `text` to `max_tokens` words; the flag says whether it was cut."""
    words = re.findall(r"\S+\s*", text)
    if max_tokens is None or len(words) <= max_tokens:
        return text, False
    return "".join(words[:max_tokens]).rstrip(), True


def split_chunks(text: str, reply: Reply) -> list[str]:
    """Split the answer into stream chunks whose concatenation is the whole text."""
    if reply.chunk_texts is not None:
        return list(reply.chunk_texts) or [""]
    words = re.findall(r"\S+\s*", text) or [text]
    n = max(1, min(reply.chunks, len(words)))
    size, extra = divmod(len(words), n)
    bounds = [i * size + min(i, extra) for i in range(n + 1)]
    return ["".join(words[bounds[i]:bounds[i + 1]]) for i in range(n)]


def usage_metadata(prompt: int, candidates: int, reply: Reply) -> dict:
    """A Gemini usageMetadata with zero fields left out; audio tokens are split out by modality."""
    prompt_total = prompt + reply.cached_tokens + reply.audio_tokens
    total = prompt_total + candidates + reply.thoughts_tokens + reply.tool_use_prompt_tokens
    usage = {"promptTokenCount": prompt_total, "candidatesTokenCount": candidates,
             "totalTokenCount": total, "cachedContentTokenCount": reply.cached_tokens,
             "thoughtsTokenCount": reply.thoughts_tokens,
             "toolUsePromptTokenCount": reply.tool_use_prompt_tokens}
    usage = {k: v for k, v in usage.items() if v}
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt_total - reply.audio_tokens}]
    if reply.audio_tokens:
        usage["promptTokensDetails"].append({"modality": "AUDIO", "tokenCount": reply.audio_tokens})
    if reply.cached_tokens:
        usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": reply.cached_tokens}]
    return usage


def grounding_metadata(queries) -> dict:
    """A candidate's `groundingMetadata` after a Google Search with `queries`."""
    return {
        "webSearchQueries": list(queries),
        "searchEntryPoint": {"renderedContent": "<div class=\"container\">search suggestions</div>"},
        "groundingChunks": [{"web": {"uri": f"https://example.com/{n}", "title": f"example.com/{n}"}}
                            for n in range(len(queries))],
        "groundingSupports": [],
    }


def generate_response(text: str | None, usage: dict, model: str, response_id: str,
                      finish: str | None = None, blocked: str | None = None, grounding: dict | None = None) -> dict:
    """One GenerateContentResponse (also one stream chunk)."""
    body: dict = {}
    if blocked:
        body["promptFeedback"] = {"blockReason": blocked, "safetyRatings": []}
    else:
        candidate: dict = {"content": {"parts": [{"text": text}], "role": "model"}}
        if finish:
            candidate["finishReason"] = finish
        if grounding is not None:
            candidate["groundingMetadata"] = grounding
        candidate["index"] = 0
        body["candidates"] = [candidate]
    body.update(usageMetadata=usage, modelVersion=model, responseId=response_id)
    return body


def answer_count(value: object) -> int:
    """How many answers a request asks for (`candidateCount`, OpenAI `n`): a positive int, else 1."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 1


def with_copies(body: dict, key: str, n: int) -> dict:
    """`body` with its one candidate (or choice, by `key`) given `n` times, indexed 0..n-1."""
    if n == 1 or not body.get(key):
        return body
    return body | {key: [body[key][0] | {"index": i} for i in range(n)]}


def model_resource(name: str, display: str, thinking: bool) -> dict:
    """One entry of the native models list."""
    embedding = "embedding" in name
    resource = {
        "name": f"models/{name}", "version": "001", "displayName": display,
        "description": f"Fake {display} for tests.",
        "inputTokenLimit": 2048 if embedding else 1048576,
        "outputTokenLimit": 1 if embedding else 65536,
        "supportedGenerationMethods": EMBED_METHODS if embedding else GENERATE_METHODS,
    }
    if not embedding:
        resource.update(temperature=1, topP=0.95, topK=64, maxTemperature=2)
    if thinking:
        resource["thinking"] = True
    return resource


def page_token(offset: int) -> str:
    """An opaque-looking token that encodes where the next page starts."""
    return base64.b64encode(f"\n\x11fake-models-page:{offset}".encode()).decode()


def page_offset(token: str) -> int | None:
    """Decode a token from `page_token`; None if it is not one."""
    try:
        prefix, _, offset = base64.b64decode(token, validate=True).decode().rpartition(":")
        return int(offset) if prefix == "\n\x11fake-models-page" else None
    except ValueError:
        return None


def embedding_values(text: str, dims: int) -> list[float]:
    """A deterministic vector for `text`; every value is exact in float32 (k/128)."""
    digest = b""
    while len(digest) < dims:
        digest += hashlib.sha256(f"{len(digest)}:{text}".encode()).digest()
    return [(b - 128) / 128 for b in digest[:dims]]


def float32_base64(values: list[float]) -> str:
    """Base64 of the little-endian float32 array, OpenAI's `encoding_format: base64`."""
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


def openai_usage(usage: dict) -> dict:
    """OpenAI-style usage from a Gemini usageMetadata (total keeps the thoughts)."""
    return {"prompt_tokens": usage.get("promptTokenCount", 0),
            "completion_tokens": usage.get("candidatesTokenCount", 0),
            "total_tokens": usage.get("totalTokenCount", 0)}


def openai_completion(text: str, usage: dict, model: str, response_id: str, finish: str) -> dict:
    """A non-streamed `chat.completion`."""
    choice = {"index": 0, "finish_reason": FINISH_TO_OPENAI.get(finish, "content_filter"),
              "message": {"role": "assistant", "content": text}}
    return {"id": response_id, "object": "chat.completion", "created": int(time.time()),
            "model": model, "choices": [choice], "usage": openai_usage(usage)}


def openai_chunk(text: str, model: str, response_id: str, finish: str | None = None,
                 usage: dict | None = None) -> dict:
    """One `chat.completion.chunk`; Gemini puts usage on the last content chunk."""
    choice: dict = {"index": 0, "delta": {"role": "assistant", "content": text}}
    if finish:
        choice["finish_reason"] = FINISH_TO_OPENAI.get(finish, "content_filter")
    chunk = {"id": response_id, "object": "chat.completion.chunk", "created": int(time.time()),
             "model": model, "choices": [choice]}
    if usage is not None:
        chunk["usage"] = openai_usage(usage)
    return chunk


def openai_model(name: str) -> dict:
    """One model in the OpenAI list shape (ids keep the `models/` prefix)."""
    return {"id": f"models/{name}", "object": "model", "created": 0, "owned_by": "google"}


def png_image(seed: str, pad: int = 0) -> bytes:
    """A valid 8x8 grey PNG whose shade comes from `seed`, padded with a `tEXt` chunk to at least `pad` bytes."""
    shade = hashlib.sha256(seed.encode()).digest()[0]
    rows = b"".join(b"\x00" + bytes([shade]) * 8 for _ in range(8))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0))
    filler = chunk(b"tEXt", b"Comment\x00" + b"x" * pad) if pad else b""
    return b"\x89PNG\r\n\x1a\n" + header + filler + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def openai_images(images: list[bytes]) -> dict:
    """An images answer of Gemini's OpenAI-compatible endpoint: `created` and the images as `b64_json`."""
    return {"created": int(time.time()), "data": [{"b64_json": base64.b64encode(image).decode()} for image in images]}
