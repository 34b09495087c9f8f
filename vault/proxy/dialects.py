"""How each client family expects to hear about a failure inside a stream."""

import json

from vault.errors import UpstreamFailed, error_body


def stream_error_event(dialect: str, server_sent_events: bool) -> bytes | None:
    """One SSE event carrying an error in `dialect`, or None where the format has none.

    Native SSE frames end with CRLF pairs, OpenAI-compatible ones with LF pairs; both SDKs
    raise on a `data: {"error": …}` event.
    """
    if not server_sent_events:
        return None
    error = UpstreamFailed("The upstream stream broke off before the answer was complete.")
    payload = json.dumps(error_body(error, dialect), separators=(",", ":"))
    ending = "\r\n\r\n" if dialect == "google" else "\n\n"
    return f"data: {payload}{ending}".encode()


def normalize_model(model: object) -> str:
    """A bare model id: no `models/` prefix, no surrounding space."""
    if not isinstance(model, str):
        return ""
    return model.strip().removeprefix("models/")[:128]
