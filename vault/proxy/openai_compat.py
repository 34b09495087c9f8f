"""OpenAI-compatible paths, forwarded to Gemini's `/v1beta/openai/` endpoint."""

from flask import Response

from vault.proxy import bp
from vault.proxy.forwarding import openai_request, proxy


@bp.post("/v1/chat/completions")
def chat_completions() -> Response:
    """Chat, streamed (`"stream": true`) or whole."""
    return proxy("chat.completions", lambda: openai_request("/v1beta/openai/chat/completions"))


@bp.post("/v1/embeddings")
def embeddings() -> Response:
    return proxy("embeddings", lambda: openai_request("/v1beta/openai/embeddings"))


@bp.route("/v1beta/openai/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def passthrough(rest: str) -> Response:
    """Anything under Gemini's own OpenAI-compatible base, for clients configured with it."""
    endpoint = "openai.models" if rest.startswith("models") else f"openai.{rest.split('/')[0]}"
    return proxy(endpoint[:64], lambda: openai_request(f"/v1beta/openai/{rest}"))
