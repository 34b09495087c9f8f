"""How each client family expects to hear about a failure inside a stream."""

import json

from vault.errors import PaymentRequired, UpstreamFailed, VaultError, error_body
from vault.upstream.relay import CUT_OFF, UPSTREAM_BROKE

STREAM_ERRORS: dict[str, VaultError] = {
    CUT_OFF: PaymentRequired("The answer reached what your balance can hold for it, so the Vault ended it here; "
                             "add credit, or ask for fewer output tokens."),
}
BROKE_OFF = UpstreamFailed("The upstream stream broke off before the answer was complete.")


def stream_error_event(dialect: str, server_sent_events: bool, ending: str = UPSTREAM_BROKE) -> bytes | None:
    """One SSE event carrying the error that ended a stream (`ending`) in `dialect`, or None
    where the format has none.

    Native SSE frames end with CRLF pairs, OpenAI-compatible ones with LF pairs; both SDKs
    raise on a `data: {"error": …}` event: a 502 when the upstream broke off, a 402 when the
    Vault cut the stream at its hold.
    """
    if not server_sent_events:
        return None
    error = STREAM_ERRORS.get(ending, BROKE_OFF)
    payload = json.dumps(error_body(error, dialect), separators=(",", ":"))
    terminator = "\r\n\r\n" if dialect == "google" else "\n\n"
    return f"data: {payload}{terminator}".encode()


def normalize_model(model: object) -> str:
    """A bare model id: no `models/` prefix, no surrounding space."""
    if not isinstance(model, str):
        return ""
    return model.strip().removeprefix("models/")[:128]
