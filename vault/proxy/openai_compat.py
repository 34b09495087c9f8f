"""OpenAI-compatible paths, forwarded to Gemini's `/v1beta/openai/` endpoint."""

from flask import Response

from vault.proxy import bp
from vault.proxy.forwarding import authenticate_caller, openai_request, serve


@bp.post("/v1/chat/completions")
def chat_completions() -> Response:
    """Chat, streamed (`"stream": true`) or whole."""
    caller = authenticate_caller()
    return serve(caller, openai_request("/v1beta/openai/chat/completions"))


@bp.post("/v1/embeddings")
def embeddings() -> Response:
    caller = authenticate_caller()
    return serve(caller, openai_request("/v1beta/openai/embeddings"))


@bp.route("/v1beta/openai/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def passthrough(rest: str) -> Response:
    """Anything under Gemini's own OpenAI-compatible base, for clients configured with it."""
    caller = authenticate_caller()
    return serve(caller, openai_request(f"/v1beta/openai/{rest}"))
