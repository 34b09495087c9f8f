"""Webhook signatures: `X-GV-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`.

The receiver recomputes the HMAC over the timestamp and the body bytes exactly as received,
compares in constant time, and refuses a timestamp too far from its own clock (replays).
"""

import hashlib
import hmac

HEADER = "X-GV-Signature"


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The header value for `body` sent at `timestamp` (unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, body: bytes, header: str, now: float, tolerance: float = 300) -> bool:
    """Whether `header` signs `body` with `secret` and its timestamp is within `tolerance` seconds of `now`."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, body, timestamp), f"t={timestamp},v1={parts.get('v1', '')}")
