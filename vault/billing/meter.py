"""One request's metering: a hold before forwarding, usage while relaying, settlement at the end.

Plain Python over explicit collaborators, so it is safe inside a streaming generator long
after the view returned. `finish()` settles exactly once, whatever path ends the request.
"""

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from vault.billing import estimate, ledger, prices
from vault.billing.usage import NO_USAGE, Usage
from vault.clock import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HoldPolicy:
    """How holds are sized."""

    default_output_tokens: int
    floor_nano: int


class Meter:
    """Meters one proxied request for `user_id` on Vault key `api_key_id`."""

    def __init__(self, session_factory: Callable[[], Session], price_book: prices.PriceBook, policy: HoldPolicy,
                 user_id: int, api_key_id: int, endpoint: str, request_id: str | None = None,
                 observe: Callable[[ledger.Settlement], None] | None = None):
        self._sessions = session_factory
        self._prices = price_book
        self._policy = policy
        self.request_id = request_id or uuid.uuid4().hex
        self.user_id, self.api_key_id, self.endpoint = user_id, api_key_id, endpoint
        self.model, self.streamed = "", False
        self.price = prices.FREE
        self.hold = 0
        self.started_at: datetime = utcnow()
        self._started = time.perf_counter()
        self._first_byte_ms: int | None = None
        self._settled = False
        self._observe = observe

    def describe(self, model: str, streamed: bool, billable: bool) -> None:
        """Name the model, the kind of answer and whether the allow-listed action is billed."""
        self.model, self.streamed = model, streamed
        if billable:
            self.price = self._prices.lookup(model)

    def reserve(self, size: int, payload: object) -> None:
        """Hold the estimated cost (nothing for free calls); `PaymentRequired` if spent.

        `payload` is the parsed request body, `size` its length in bytes.
        """
        amount = 0
        if self.price is not prices.FREE:
            amount = estimate.estimate_hold(size, payload, self.price, self._policy.default_output_tokens,
                                           self._policy.floor_nano)
        with self._sessions() as session:
            self.hold = ledger.reserve(session, self.user_id, amount)

    def first_byte(self) -> None:
        """Note when the answer started reaching the client."""
        if self._first_byte_ms is None:
            self._first_byte_ms = int((time.perf_counter() - self._started) * 1000)

    def finish(self, status: int, usage: Usage = NO_USAGE, upstream_key_id: int | None = None,
               ending: str = "completed", error: str | None = None) -> None:
        """Settle: record the request, charge what it used, release the rest of the hold."""
        if self._settled:
            return
        self._settled = True
        rates = self.price.rates_for(usage.prompt)
        entry = ledger.Settlement(
            request_id=self.request_id, user_id=self.user_id, api_key_id=self.api_key_id, endpoint=self.endpoint,
            model=self.model, status=status, started_at=self.started_at, finished_at=utcnow(),
            total_ms=int((time.perf_counter() - self._started) * 1000), ending=ending, streamed=self.streamed,
            upstream_key_id=upstream_key_id, priced_model=self.price.model, usage=usage, rates=rates,
            cost=prices.cost_nano(usage, rates), hold=self.hold, first_byte_ms=self._first_byte_ms, error=error,
        )
        if self._observe is not None:
            self._observe(entry)
        try:
            with self._sessions() as session:
                ledger.settle(session, entry)
        except Exception:
            # Never lose the hold silently: the log line lets an operator settle by hand.
            log.exception("settlement failed: request %s user %s hold %s cost %s", self.request_id, self.user_id,
                          entry.hold, entry.cost)
