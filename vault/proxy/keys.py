"""The proxy's door: find the Vault key however the client sent it (checked in `vault.access`)."""

from flask import Request


def presented_vault_key(request: Request) -> str | None:
    """The Vault key from `x-goog-api-key`, `?key=` or `Authorization: Bearer`, in that order."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    bearer = token.strip() if scheme.lower() == "bearer" else ""
    for candidate in (request.headers.get("x-goog-api-key", ""), request.args.get("key", ""), bearer):
        if candidate.strip():
            return candidate.strip()
    return None


def bearer_caller(request: Request) -> bool:
    """The openai SDK authenticates with Bearer; google-genai and curl with a Google-style key."""
    return request.headers.get("Authorization", "").lower().startswith("bearer ") and not (
        request.headers.get("x-goog-api-key") or request.args.get("key")
    )
