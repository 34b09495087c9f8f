"""Gemini's OpenAI-compatible endpoints under /v1beta/openai/: chat, models, embeddings."""

from tests.fake_gemini import faults
from tests.fake_gemini.calls import (
    ApiError,
    Call,
    Stream,
    require_model,
    require_object,
    require_own_resources,
)
from tests.fake_gemini.payloads import (
    answer_count,
    answer_text,
    count_words,
    embedding_values,
    float32_base64,
    openai_chunk,
    openai_completion,
    openai_model,
    prompt_tokens,
    split_chunks,
    truncate,
    usage_metadata,
    with_copies,
)
from tests.fake_gemini.script import bare_model


def chat(call: Call) -> dict | Stream:
    """POST chat/completions, streamed when the body says `"stream": true`."""
    body = require_object(call.body)
    call.model = _model_of(body)
    require_model(call, "generateContent")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(faults.invalid_argument(
            "* GenerateContentRequest.contents: contents is not specified\n", with_details=False))
    require_own_resources(call, body)
    contents, system = _to_contents(messages)
    text = answer_text(call.reply, _last_user(messages))
    cut = False
    if call.reply.chunk_texts is None:
        text, cut = truncate(text, body.get("max_completion_tokens") or body.get("max_tokens"))
    finish = "MAX_TOKENS" if cut else call.reply.finish_reason
    prompt = prompt_tokens(contents, system)
    if body.get("stream"):
        return Stream(_chunks(call, body, text, prompt, finish), "openai")
    n = answer_count(body.get("n"))
    usage = usage_metadata(prompt, n * count_words(text), call.reply)
    return with_copies(openai_completion(text, usage, call.model, call.response_id, finish), "choices", n)


def _chunks(call: Call, body: dict, text: str, prompt: int, finish: str) -> list[dict]:
    """Chunks (each with `n` choices); usage rides on the last content chunk, and only if
    include_usage was asked."""
    pieces = split_chunks(text, call.reply)
    options = body.get("stream_options") or {}
    n = answer_count(body.get("n"))
    usage = usage_metadata(prompt, n * count_words(text), call.reply)
    events = [openai_chunk(p, call.model, call.response_id) for p in pieces[:-1]]
    events.append(openai_chunk(pieces[-1], call.model, call.response_id, finish,
                               usage if options.get("include_usage") else None))
    return [with_copies(event, "choices", n) for event in events]


def _model_of(body: dict) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(faults.invalid_argument("model is not specified", with_details=False))
    return bare_model(model)


def _text_of(content: object) -> str:
    """Message content as text: a string, or the text items of a content-part list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _to_contents(messages: list) -> tuple[list[dict], dict]:
    """OpenAI messages as Gemini contents plus a system instruction."""
    system = [_text_of(m.get("content")) for m in messages
              if isinstance(m, dict) and m.get("role") in ("system", "developer")]
    contents = [{"role": "model" if m.get("role") == "assistant" else "user",
                 "parts": [{"text": _text_of(m.get("content"))}]}
                for m in messages if isinstance(m, dict) and m.get("role") not in ("system", "developer")]
    return contents, {"parts": [{"text": t} for t in system]}


def _last_user(messages: list) -> str:
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    return _text_of(users[-1].get("content")) if users else ""


def list_models(call: Call) -> dict:
    """GET models in the OpenAI list shape."""
    return {"object": "list", "data": [openai_model(name) for name in call.catalog]}


def get_model(call: Call) -> dict:
    """GET models/{model}; `models/x` and `x` are the same model."""
    if call.model not in call.catalog:
        raise ApiError(faults.not_found(f"Model is not found: models/{call.model}"))
    return openai_model(call.model)


def embeddings(call: Call) -> dict:
    """POST embeddings; base64 little-endian float32 when `encoding_format` is "base64"."""
    body = require_object(call.body)
    call.model = _model_of(body)
    require_model(call, "embedContent")
    inputs = body.get("input")
    inputs = [inputs] if isinstance(inputs, str) else inputs
    if not isinstance(inputs, list) or not inputs:
        raise ApiError(faults.invalid_argument("input is not specified", with_details=False))
    texts = [i if isinstance(i, str) else " ".join(map(str, i)) if isinstance(i, list) else str(i)
             for i in inputs]
    dims = body.get("dimensions") or call.embedding_dim
    as_base64 = body.get("encoding_format") == "base64"
    data = [_embedding_item(i, embedding_values(t, dims), as_base64) for i, t in enumerate(texts)]
    tokens = sum(count_words(t) for t in texts)
    return {"object": "list", "model": call.model, "data": data,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def _embedding_item(index: int, values: list[float], as_base64: bool) -> dict:
    vector = float32_base64(values) if as_base64 else values
    return {"object": "embedding", "index": index, "embedding": vector}


HANDLERS = {
    "openai.chat": chat, "openai.embeddings": embeddings,
    "openai.listModels": list_models, "openai.getModel": get_model,
}
