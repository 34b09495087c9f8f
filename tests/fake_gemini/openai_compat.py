"""Gemini's OpenAI-compatible endpoints under /v1beta/openai/: chat, models, embeddings, images."""

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
    openai_images,
    openai_model,
    png_image,
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
    _check_extra_body(body)
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


# Gemini fields a chat body may carry in `extra_body.google` (ai.google.dev/gemini-api/docs/openai).
GOOGLE_CHAT_FIELDS = ("cached_content", "thinking_config")


def _check_extra_body(body: dict) -> None:
    """`extra_body.google` as Google documents it for chat: only its chat fields, and a thinking
    config never together with `reasoning_effort` (the two overlap; Google refuses both at once)."""
    extra = body.get("extra_body")
    if extra is None:
        return
    google = extra.get("google") if isinstance(extra, dict) else None
    if not isinstance(google, dict) or set(extra) != {"google"}:
        raise ApiError(faults.invalid_argument("Invalid JSON payload received. Unknown name in \"extra_body\".",
                                               with_details=False))
    unknown = sorted(set(google) - set(GOOGLE_CHAT_FIELDS))
    if unknown:
        raise ApiError(faults.invalid_argument(
            f"Invalid JSON payload received. Unknown name \"{unknown[0]}\" at 'extra_body.google': Cannot find field.",
            with_details=False))
    if "thinking_config" in google and "reasoning_effort" in body:
        raise ApiError(faults.invalid_argument("reasoning_effort and thinking_config cannot both be set.",
                                               with_details=False))


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


# Imagen (and Gemini's image model) as the images endpoint serves them; not in the models list.
IMAGE_MODELS = ("imagen-3.0-generate-002", "imagen-4.0-generate-001", "imagen-4.0-ultra-generate-001",
                "imagen-4.0-fast-generate-001", "gemini-2.5-flash-image")
IMAGE_FIELDS = ("model", "prompt", "n", "size", "response_format")


def images(call: Call) -> dict:
    """POST images/generations: `n` (1 to 4) deterministic PNGs as `b64_json`, fewer when the reply says so.

    Unknown fields are refused as upstream refuses them on this endpoint; no usage is reported.
    """
    body = require_object(call.body)
    call.model = _model_of(body)
    if call.model not in IMAGE_MODELS:
        raise ApiError(faults.not_found(f"models/{call.model} is not found for API version v1beta, or is not "
                                        "supported for predict. Call ListModels to see the list of available "
                                        "models and their supported methods."))
    unknown = [name for name in body if name not in IMAGE_FIELDS]
    if unknown:
        raise ApiError(faults.invalid_argument(
            f'Invalid JSON payload received. Unknown name "{unknown[0]}": Cannot find field.'))
    prompt, n = body.get("prompt"), body.get("n", 1)
    if not isinstance(prompt, str) or not prompt:
        raise ApiError(faults.invalid_argument("prompt is not specified", with_details=False))
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 4:
        raise ApiError(faults.invalid_argument("Number of images must be between 1 and 4.", with_details=False))
    made = n if call.reply.images is None else min(call.reply.images, n)
    return openai_images([png_image(f"{call.model}:{prompt}:{i}", call.reply.image_bytes) for i in range(made)])


HANDLERS = {
    "openai.chat": chat, "openai.embeddings": embeddings, "openai.images": images,
    "openai.listModels": list_models, "openai.getModel": get_model,
}
