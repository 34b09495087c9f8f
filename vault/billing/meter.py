"""One request's metering: a hold before forwarding, usage while relaying, settlement at the end.

Plain Python over explicit collaborators, so it is safe inside a streaming generator long
after the view returned. `finish()` settles exactly once, whatever path ends the request.

The settlement id is made here, never taken from the client: the caller's `X-Request-Id`
is only kept on the record for tracing. The hold is one round trip (`vault.billing.holds`),
which also reads the version stamps the caller checks its caches against; the settlement is
queued for the settlement writer (`vault.billing.settler`), which writes many per
transaction, retries database errors, and leaves the durable hold for the sweeper if all
else fails.

Sizing and charging (see `vault.billing.estimate`): the hold covers the request's worst case;
when the balance cannot, the output cap is lowered to what it covers (`output_cap`,
`lowered_cap`) and the request is refused only below `HoldPolicy.min_output_tokens`. The
charge is the upstream's own usage when it reported it for the whole answer; otherwise (no
usage, or a stream ended early) it is the best of what was reported so far and the estimate
of what was delivered, recorded with `usage_source = "estimated"`. An images call holds its
`n` images at the model's per-image price and is charged for the images its answer held
(`Evidence.images`, recorded as `image_count`); a model without an image price is refused
with a 400 before anything is sent (its floor hold is refunded whole).
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from vault.billing import estimate, ledger, prices
from vault.billing.holds import HoldRequest, Holds, Stamps
from vault.billing.settler import SettlementWriter
from vault.billing.usage import NO_USAGE, Evidence, Usage
from vault.clock import utcnow
from vault.errors import BadRequest
from vault.ids import time_ordered_id
from vault.policies.quota import Quota
from vault.security import off_hub

# Images are only made with a price to charge them at: never free, never at a token price that means nothing.
NO_IMAGE_PRICE = ("The Vault has no per-image price for '{model}', so it does not generate images with it; "
                  "an admin can set one (the price table's `image`, USD per image).")


@dataclass(frozen=True)
class HoldPolicy:
    """How holds are sized: the smallest hold, the smallest output cap a request whose worst
    case the balance cannot cover is admitted with (402 below), and how far below zero a hold
    may take a balance."""

    floor_nano: int
    min_output_tokens: int = 1024
    overdraft_nano: int = 0
    max_age_seconds: float = 3600.0  # a hold older than this is swept as abandoned


@dataclass(frozen=True)
class Books:
    """Where meters take their holds and send their settlements."""

    holds: Holds
    settlements: SettlementWriter


class Meter:
    """Meters one proxied request for `user_id` on Vault key `api_key_id`."""

    def __init__(self, books: Books, price_book: prices.PriceBook, policy: HoldPolicy,
                 user_id: int, api_key_id: int, endpoint: str, client_request_id: str | None = None,
                 observe: Callable[[ledger.Settlement], None] | None = None):
        self._books = books
        self._prices = price_book
        self._policy = policy
        self.settlement_id = time_ordered_id()
        self.client_request_id = client_request_id
        self.user_id, self.api_key_id, self.endpoint = user_id, api_key_id, endpoint
        self.model, self.streamed = "", False
        self.price = prices.FREE
        self.hold = 0
        self.request: estimate.RequestEstimate | None = None  # billable calls only
        self.worst_input = 0
        self.output_cap = 0  # output tokens per candidate the hold covers
        self.lowered_cap: int | None = None  # set when that is below what the request allows
        self._price_version: int | None = None
        self.priced = False  # a billed call, priced from the book at version `priced_at`
        self.priced_at: int | None = None
        self.started_at: datetime = utcnow()
        self._started = time.perf_counter()
        self._first_byte_ms: int | None = None
        self._settled = False
        self._observe = observe
        self.quota: Quota | None = None  # the key's cap, tokens per minute, concurrency: checked in the hold
        self.fallback_from: str | None = None  # the model first routed to, when a fallback serves the call

    def describe(self, model: str, streamed: bool, billable: bool, price_version: int | None = None) -> None:
        """Name the model, the kind of answer and whether the allow-listed action is billed.

        `price_version` is the price version read with the caller's key: the price book
        reloads first if it holds another, so a price edit applies to this very request.
        """
        self.model, self.streamed = model, streamed
        if billable:
            self.price = self._prices.lookup(model, price_version)
            self._price_version = price_version
            self.priced, self.priced_at = True, self._prices.version

    def reserve(self, size: int, payload: object, large: bool = False) -> Stamps:
        """Hold the request's worst case, or as much of it as the balance covers with at least
        the minimum output cap (nothing for free calls); `PaymentRequired` below that.

        `payload` is the parsed request body, `size` its length in bytes; a `large` one is read
        off the gevent hub. Sets `output_cap`, and `lowered_cap` when the upstream must be told.
        Returns the version stamps read with the hold.
        """
        amount, minimum, plan, unpriced = 0, None, None, False
        if self.price is not prices.FREE:
            self.request = (off_hub(estimate.read_request, self.endpoint, payload, size) if large
                            else estimate.read_request(self.endpoint, payload, size))
            unpriced = bool(self.request.images) and self.price.image is None  # refused below, after the stamps
            plan = estimate.plan_hold(self.request, self.price, self._prices.limits(self.model, self._price_version),
                                      self._policy.min_output_tokens, self._policy.floor_nano)
            amount, minimum, self.worst_input = plan.amount, plan.minimum, plan.worst_input
        now = utcnow()
        taken = self._books.holds.take(HoldRequest(
            self.user_id, self.settlement_id, amount, minimum, endpoint=self.endpoint, model=self.model,
            created_at=now, expires_at=now + timedelta(seconds=self._policy.max_age_seconds),
            estimate_nano=plan.estimate_nano if plan else 0, api_key_id=self.api_key_id,
            client_request_id=self.client_request_id, overdraft=self._policy.overdraft_nano,
            quota=self._quota(self.worst_input)))
        self.hold = taken.amount
        if unpriced and taken.stamps.prices == self.priced_at:  # (a stale price book reloads and asks again)
            raise BadRequest(NO_IMAGE_PRICE.format(model=self.model[:128]))
        if plan is not None:
            self.output_cap = plan.cap_for(self.hold)
            self.lowered_cap = self.output_cap if self.output_cap < plan.allowed_cap else None
        return taken.stamps

    def reserve_charge(self, amount: int) -> None:
        """Hold `amount` for a call charged a fixed sum once it is done (a cache's storage for the
        time it is kept), on top of the free admission; `PaymentRequired` if the balance cannot
        cover it. Never settled (a killed worker), the sweeper charges all of it."""
        if amount <= 0:
            return
        if self.quota is not None:  # the admission's empty hold row gives way to this one
            self._books.holds.release(self.user_id, self.settlement_id)
        now = utcnow()
        taken = self._books.holds.take(HoldRequest(
            self.user_id, self.settlement_id, amount, amount, endpoint=self.endpoint, model=self.model,
            created_at=now, expires_at=now + timedelta(seconds=self._policy.max_age_seconds), estimate_nano=amount,
            api_key_id=self.api_key_id, client_request_id=self.client_request_id,
            overdraft=self._policy.overdraft_nano, quota=self._quota(0)))
        self.hold = taken.amount

    def _quota(self, tokens: int) -> Quota | None:
        return None if self.quota is None else replace(self.quota, tokens=tokens)

    def release(self) -> None:
        """Give the hold back untouched and settle nothing: the call was never forwarded (it is
        taken again after the caller's caches are refreshed)."""
        if self.hold or self.quota is not None:
            self._books.holds.release(self.user_id, self.settlement_id)
        self._settled = True

    def retarget(self, model: str, size: int, payload: object, large: bool = False) -> Stamps:
        """Price and hold the call anew for `model`, which serves it instead of the model it was
        described for (a fallback): the first hold is given back, one at `model`'s price taken
        (`reserve`), and the record keeps the first model in `fallback_from`."""
        if self.hold or self.quota is not None:
            self._books.holds.release(self.user_id, self.settlement_id)
        self.hold, self.lowered_cap = 0, None
        self.fallback_from = self.fallback_from or self.model
        self.describe(model, self.streamed, self.priced, self._price_version)
        return self.reserve(size, payload, large)

    def charged(self, evidence: Evidence, complete: bool = True) -> tuple[Usage, str]:
        """The usage to charge for what an answer showed, and its source ("reported" or "estimated").

        The upstream's usage when it reported it for a `complete` answer; the estimate when it
        reported none; for an answer ended early, the best of the two (`estimate.merged`).
        """
        if self.request is None or self.request.images or (complete and evidence.reported is not None):
            return evidence.usage, "reported"  # images: counted in the answer itself
        guess = estimate.estimated_usage(self.request, evidence.output_chars, self.output_cap, self.worst_input,
                                         evidence.grounding)
        if evidence.reported is None:
            return guess, "estimated"
        best = estimate.merged(evidence.usage, guess)
        return best, "reported" if best == evidence.usage else "estimated"

    def cost(self, usage: Usage) -> int:
        """What `usage` costs at this request's price."""
        return prices.cost_nano(usage, self.price.rates_for(usage.prompt))

    def passes_hold(self, evidence: Evidence) -> bool:
        """Whether a stream that has shown `evidence` so far costs more than its hold.

        Only reported usage or grounding can: an estimate of delivered text alone is capped at
        what the hold covers (`estimate.estimated_usage`), so it is not priced per chunk.
        """
        if self.request is None or (evidence.reported is None and not evidence.grounding):
            return False
        return self.cost(self.charged(evidence, complete=False)[0]) > self.hold

    def first_byte(self) -> None:
        """Note when the answer started reaching the client."""
        if self._first_byte_ms is None:
            self._first_byte_ms = int((time.perf_counter() - self._started) * 1000)

    def finish(self, status: int, evidence: Evidence | None = None, upstream_key_id: int | None = None,
               ending: str = "completed", error: str | None = None, storage_nano: int | None = None) -> None:
        """Settle: record the request, charge what it used, release the rest of the hold.

        `evidence` is what the answer delivered showed (None: no answer to charge for).
        `storage_nano` is a cached content's storage charge, recorded with `usage_source=storage`.
        """
        if self._settled:
            return
        self._settled = True
        usage, source = self.charged(evidence, ending == "completed") if evidence else (NO_USAGE, "reported")
        rates = self.price.rates_for(usage.prompt)
        images = evidence.images if evidence else 0
        cost = prices.cost_nano(usage, rates) + images * (self.price.image or 0)
        if storage_nano is not None:
            cost, source = cost + storage_nano, "storage"
        entry = ledger.Settlement(
            settlement_id=self.settlement_id, user_id=self.user_id, api_key_id=self.api_key_id, endpoint=self.endpoint,
            model=self.model, status=status, started_at=self.started_at, finished_at=utcnow(),
            total_ms=int((time.perf_counter() - self._started) * 1000), ending=ending, streamed=self.streamed,
            upstream_key_id=upstream_key_id, priced_model=self.price.model, usage=usage, rates=rates,
            cost=cost, hold=self.hold, first_byte_ms=self._first_byte_ms, error=error,
            client_request_id=self.client_request_id, usage_source=source, image_count=images,
            fallback_from=self.fallback_from,
        )
        if self._observe is not None:
            self._observe(entry)
        self._settle(entry)

    def _settle(self, entry: ledger.Settlement) -> None:
        self._books.settlements.submit(entry)
