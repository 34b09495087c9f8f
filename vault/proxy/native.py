"""Native Gemini paths under `/v1beta/` and `/v1/`, forwarded as they are."""

from flask import Response, request

from vault.proxy import bp
from vault.proxy.dialects import model_from_native_path
from vault.proxy.forwarding import build_request, openai_request, proxy

VERSIONS = "<any(v1beta, v1):version>"


def bearer_caller() -> bool:
    """The openai SDK authenticates with Bearer; google-genai and curl with a Google key."""
    return request.headers.get("Authorization", "").lower().startswith("bearer ") and not (
        request.headers.get("x-goog-api-key") or request.args.get("key")
    )


@bp.get(f"/{VERSIONS}/models")
def list_models(version: str) -> Response:
    """Model list: OpenAI shape for a Bearer caller of `/v1/models`, native otherwise."""
    if version == "v1" and bearer_caller():
        return proxy("openai.models", lambda: openai_request("/v1beta/openai/models"))
    return proxy("models.list", lambda: build_request(f"/{version}/models", "google", bearer_auth=False))


@bp.route(f"/{VERSIONS}/models/<path:name>", methods=["GET", "POST"])
def model_call(version: str, name: str) -> Response:
    """One model (`GET`) or a model method such as `:generateContent` (`POST`)."""
    if version == "v1" and request.method == "GET" and bearer_caller():
        return proxy("openai.models", lambda: openai_request(f"/v1beta/openai/models/{name}"))
    model, action = model_from_native_path(name)
    endpoint = action or "models.get"
    return proxy(endpoint, lambda: build_request(f"/{version}/models/{name}", "google", bearer_auth=False,
                                                 model=model, streaming=action == "streamGenerateContent"))
