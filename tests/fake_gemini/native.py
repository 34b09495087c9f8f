"""The native Gemini endpoints: models, generateContent, streams, countTokens, embeddings."""

from tests.fake_gemini import faults
from tests.fake_gemini.calls import (
    ApiError,
    Call,
    Stream,
    page_size,
    require_model,
    require_object,
    require_own_resources,
)
from tests.fake_gemini.payloads import (
    answer_count,
    answer_text,
    count_words,
    embedding_values,
    generate_response,
    grounding_metadata,
    last_user_text,
    page_offset,
    page_token,
    prompt_tokens,
    split_chunks,
    truncate,
    usage_metadata,
    with_copies,
)

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 50


def list_models(call: Call) -> dict:
    """GET /{v}/models with pageSize / pageToken; no nextPageToken on the last page."""
    size = page_size(call.param("pageSize"), DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    token = call.param("pageToken")
    start = page_offset(token) if token else 0
    if start is None:
        raise ApiError(faults.invalid_argument("Invalid page token.", with_details=False))
    models = list(call.catalog.values())
    page = {"models": models[start:start + size]}
    if start + size < len(models):
        page["nextPageToken"] = page_token(start + size)
    return page


def get_model(call: Call) -> dict:
    """GET /{v}/models/{model}."""
    resource = call.catalog.get(call.model or "")
    if resource is None:
        raise ApiError(faults.not_found(
            f"Model is not found: models/{call.model} for api version {call.version}"))
    return resource


def generate(call: Call) -> dict:
    """POST :generateContent -- one whole GenerateContentResponse."""
    text, prompt, finish = _plan(call, "generateContent")
    n = _candidate_count(call)
    usage = usage_metadata(prompt, n * count_words(text), call.reply)
    return with_copies(generate_response(text, usage, call.model, call.response_id, finish, call.reply.blocked,
                                         _grounding(call)), "candidates", n)


def _candidate_count(call: Call) -> int:
    """`generationConfig.candidateCount`: every candidate is the same answer, each counted."""
    config = call.body.get("generationConfig") or call.body.get("generation_config") or {}
    return answer_count(config.get("candidateCount") or config.get("candidate_count"))


def _grounding(call: Call) -> dict | None:
    queries = call.reply.search_queries
    return None if queries is None else grounding_metadata(queries)


def stream_generate(call: Call) -> Stream:
    """POST :streamGenerateContent -- SSE with alt=sse, else one progressive JSON array."""
    text, prompt, finish = _plan(call, "generateContent")
    framing = "sse" if call.alt == "sse" else "array"
    if call.reply.blocked:
        usage = usage_metadata(prompt, 0, call.reply)
        return Stream([generate_response(None, usage, call.model, call.response_id,
                                         blocked=call.reply.blocked)], framing)
    return Stream(_chunks(call, text, prompt, finish), framing)


def _chunks(call: Call, text: str, prompt: int, finish: str) -> list[dict]:
    """Stream chunks with cumulative usage; the last one carries finishReason and totals."""
    pieces = split_chunks(text, call.reply)
    events, so_far, n = [], "", _candidate_count(call)
    for i, piece in enumerate(pieces):
        so_far += piece
        last = i == len(pieces) - 1
        candidates = n * count_words(text if last else so_far)
        usage = usage_metadata(prompt, candidates, call.reply)
        event = generate_response(piece, usage, call.model, call.response_id, finish if last else None,
                                  grounding=_grounding(call) if last else None)
        events.append(with_copies(event, "candidates", n))
    return events


def _plan(call: Call, method: str) -> tuple[str, int, str]:
    """Validate a GenerateContentRequest; return the answer text, prompt tokens, finish reason."""
    require_model(call, method)
    body = require_object(call.body)
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise ApiError(faults.invalid_argument(
            "* GenerateContentRequest.contents: contents is not specified\n", with_details=False))
    require_own_resources(call, body)
    system = body.get("systemInstruction") or body.get("system_instruction")
    config = body.get("generationConfig") or body.get("generation_config") or {}
    limit = config.get("maxOutputTokens") or config.get("max_output_tokens")
    text = answer_text(call.reply, last_user_text(contents))
    cut = False
    if call.reply.chunk_texts is None:
        text, cut = truncate(text, limit)
    return text, prompt_tokens(contents, system), "MAX_TOKENS" if cut else call.reply.finish_reason


def count_tokens(call: Call) -> dict:
    """POST :countTokens, with `contents` or with a whole `generateContentRequest`."""
    require_model(call, "countTokens")
    body = require_object(call.body)
    request = body.get("generateContentRequest") or body.get("generate_content_request")
    source = request if isinstance(request, dict) else body
    contents = source.get("contents")
    if not isinstance(contents, list) or not contents:
        raise ApiError(faults.invalid_argument(
            "* CountTokensRequest.contents: contents is not specified\n", with_details=False))
    require_own_resources(call, body)
    total = prompt_tokens(contents, source.get("systemInstruction"))
    return {"totalTokens": total, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": total}]}


def embed_content(call: Call) -> dict:
    """POST :embedContent -- one embedding."""
    require_model(call, "embedContent")
    return {"embedding": _embed(call, require_object(call.body), "EmbedContentRequest")}


def batch_embed(call: Call) -> dict:
    """POST :batchEmbedContents -- every request's model must be the model in the URL."""
    require_model(call, "batchEmbedContents")
    requests = require_object(call.body).get("requests")
    if not isinstance(requests, list) or not requests:
        raise ApiError(faults.invalid_argument(
            "* BatchEmbedContentsRequest.requests: requests is not specified\n", with_details=False))
    return {"embeddings": [_batch_item(call, i, r) for i, r in enumerate(requests)]}


def _batch_item(call: Call, index: int, request: object) -> dict:
    request = require_object(request)
    if request.get("model") != f"models/{call.model}":
        raise ApiError(faults.invalid_argument(
            f"* BatchEmbedContentsRequest.requests[{index}].model: the model in the request "
            f"({request.get('model')}) must match the model in the URL (models/{call.model})\n",
            with_details=False))
    return _embed(call, request, f"BatchEmbedContentsRequest.requests[{index}]")


def _embed(call: Call, request: dict, where: str) -> dict:
    content = request.get("content")
    if not isinstance(content, dict):
        raise ApiError(faults.invalid_argument(
            f"* {where}.content: content is not specified\n", with_details=False))
    dims = request.get("outputDimensionality") or request.get("output_dimensionality")
    text = " ".join(p.get("text", "") for p in content.get("parts") or [] if isinstance(p, dict))
    return {"values": embedding_values(text, dims or call.embedding_dim)}


HANDLERS = {
    "listModels": list_models, "getModel": get_model, "generateContent": generate,
    "streamGenerateContent": stream_generate, "countTokens": count_tokens,
    "embedContent": embed_content, "batchEmbedContents": batch_embed,
}
