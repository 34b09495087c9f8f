"""Login throttling: too many failed attempts for an account or from an address wait a while.

In-process and per worker; sliding windows of failure times.
"""

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable


class LoginThrottle:
    """Allows `max_failures` failures per account (four times that per address) per `window` seconds."""

    def __init__(self, max_failures: int, window: float, clock: Callable[[], float] = time.monotonic):
        self.max_failures = max_failures
        self.window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _limits(self, email: str, address: str) -> list[tuple[str, int]]:
        return [(f"account:{email.strip().lower()}", self.max_failures), (f"address:{address}", self.max_failures * 4)]

    def retry_after(self, email: str, address: str) -> int | None:
        """Seconds to wait before another attempt, or None if one may be made now."""
        now = self._clock()
        waits = []
        with self._lock:
            for key, limit in self._limits(email, address):
                recent = self._recent(key, now)
                if len(recent) >= limit:
                    waits.append(recent[0] + self.window - now)
        return max(1, int(max(waits) + 0.999)) if waits else None

    def failed(self, email: str, address: str) -> None:
        """Count a failed attempt."""
        now = self._clock()
        with self._lock:
            for key, _ in self._limits(email, address):
                self._recent(key, now).append(now)

    def succeeded(self, email: str) -> None:
        """A successful login clears the account's failures."""
        with self._lock:
            self._failures.pop(f"account:{email.strip().lower()}", None)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures[key]
        while times and times[0] <= now - self.window:
            times.popleft()
        return times
