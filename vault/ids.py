"""Identifiers the Vault makes: unique, unguessable, and in the order they were made.

A settlement id or request id is 32 hex digits like `uuid4().hex`, laid out as UUIDv7 is: the
first 12 digits are the milliseconds since the epoch, the rest 80 random bits. Made in time
order, the unique indexes over them grow at their right end instead of taking every new row
to a random page — which on a large table costs a page read per insert, on SQLite inside the
worker itself.
"""

import os
import time


def time_ordered_id() -> str:
    """A new 32-hex-digit id: 48 bits of milliseconds, then 80 random bits."""
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"
