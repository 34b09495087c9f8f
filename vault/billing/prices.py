"""Prices: per-model rates (nano-USD per 1M tokens), the cached price book, and what usage costs."""

import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.billing.money import usd_to_nano
from vault.billing.usage import Usage
from vault.models import ModelPrice

PER_MILLION = 1_000_000
ALIASES = {
    "gemini-pro-latest": "gemini-2.5-pro",
    "gemini-flash-latest": "gemini-2.5-flash",
    "gemini-flash-lite-latest": "gemini-2.5-flash-lite",
}
VERSION_SUFFIX = re.compile(r"-(\d{3}|latest)$")
@dataclass(frozen=True)
class Rates:
    """The three prices that apply to one request (nano-USD per 1M tokens)."""

    input: int
    output: int
    cached: int


@dataclass(frozen=True)
class Price:
    """A model's prices, with the higher tier above `tier_threshold` prompt tokens."""

    model: str
    base: Rates
    tier_threshold: int | None = None
    above: Rates | None = None

    def rates_for(self, prompt_tokens: int) -> Rates:
        """The rates for a request whose prompt has `prompt_tokens` tokens."""
        if self.above is not None and self.tier_threshold is not None and prompt_tokens > self.tier_threshold:
            return self.above
        return self.base


FREE = Price("free", Rates(0, 0, 0))


def price_from_row(row: ModelPrice) -> Price:
    above = None
    if row.tier_threshold is not None and row.input_above_nano is not None:
        above = Rates(row.input_above_nano, row.output_above_nano or row.output_nano,
                      row.cached_above_nano if row.cached_above_nano is not None else row.cached_nano)
    return Price(row.model, Rates(row.input_nano, row.output_nano, row.cached_nano), row.tier_threshold, above)


def cost_nano(usage: Usage, rates: Rates) -> int:
    """What `usage` costs: uncached and tool-use input, cached input, and output, rounded half up."""
    uncached = max(usage.prompt - usage.cached, 0) + usage.tool_prompt
    numerator = uncached * rates.input + usage.cached * rates.cached + usage.output * rates.output
    return (numerator + PER_MILLION // 2) // PER_MILLION


def model_candidates(model: str) -> list[str]:
    """Names to look a model up by: as given, de-aliased, without a version suffix."""
    bare = model.strip().removeprefix("models/")
    names = [bare, ALIASES.get(bare, bare), VERSION_SUFFIX.sub("", bare)]
    return list(dict.fromkeys(name for name in names if name))


class PriceBook:
    """The price table cached in memory, re-read every `refresh_seconds` or on demand."""

    def __init__(self, session_factory: Callable[[], Session], fallback: Price, refresh_seconds: float,
                 clock: Callable[[], float] = time.monotonic):
        self._sessions = session_factory
        self.fallback = fallback
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._prices: dict[str, Price] = {}
        self._loaded_at = -math.inf
        self._lock = threading.Lock()

    def lookup(self, model: str) -> Price:
        """The price of `model` (normalised), or the fallback for unknown models."""
        if self._clock() - self._loaded_at >= self._refresh_seconds:
            self.refresh()
        for name in model_candidates(model):
            if name in self._prices:
                return self._prices[name]
        return self.fallback

    def refresh(self) -> None:
        """Re-read the price table now."""
        with self._lock, self._sessions() as session:
            self._prices = {row.model: price_from_row(row) for row in session.scalars(select(ModelPrice))}
            self._loaded_at = self._clock()


@dataclass(frozen=True)
class PriceInput:
    """Prices as an admin enters them: USD per 1M tokens (cached input defaults to input)."""

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    tier_threshold: int | None = None
    input_above: Decimal | None = None
    output_above: Decimal | None = None
    cached_input_above: Decimal | None = None


def upsert_price(session: Session, model: str, prices: PriceInput) -> ModelPrice:
    """Create or replace the prices of `model` (a bare model id)."""
    def nano(value: Decimal | None) -> int | None:
        return None if value is None else usd_to_nano(value)

    row = session.get(ModelPrice, model) or ModelPrice(model=model)
    row.input_nano, row.output_nano = nano(prices.input), nano(prices.output)
    row.cached_nano = nano(prices.cached_input if prices.cached_input is not None else prices.input)
    row.tier_threshold = prices.tier_threshold
    row.input_above_nano, row.output_above_nano = nano(prices.input_above), nano(prices.output_above)
    row.cached_above_nano = nano(prices.cached_input_above)
    session.add(row)
    return row
