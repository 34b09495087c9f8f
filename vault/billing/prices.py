"""Prices: per-model rates (nano-USD per 1M tokens, and per generated image), the cached price book,
and what usage costs.

Every worker keeps the price table (and the models' token limits) in memory. A change is
written with a bump of the `prices` version stamp in the same transaction; the proxy reads the
stamp with its authentication query (`PRICE_VERSION`, no extra round trip) and the book
reloads when the stamp differs from the one it loaded, so an edit applies to the next
request on every worker. A timed re-read remains as a fallback for callers without a stamp.
"""

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
from vault.models import GeminiModel, ModelPrice
from vault.models.billing_version import PRICES, bump, stamp_of

PER_MILLION = 1_000_000
GROUNDING_UNITS = ("prompt", "query")
ALIASES = {
    "gemini-pro-latest": "gemini-2.5-pro",
    "gemini-flash-latest": "gemini-2.5-flash",
    "gemini-flash-lite-latest": "gemini-2.5-flash-lite",
}
VERSION_SUFFIX = re.compile(r"-(\d{3}|latest)$")
# The current price version, as a scalar subquery other statements can carry as a column.
PRICE_VERSION = stamp_of(PRICES)


@dataclass(frozen=True)
class Rates:
    """The prices that apply to one request: nano-USD per 1M tokens, and per grounding.

    Audio prices left out (None) are the text prices. `grounding` is charged once per
    Search-grounded request, or per search query when `grounding_per_query`.
    """

    input: int
    output: int
    cached: int
    audio_input: int | None = None
    audio_cached: int | None = None
    grounding: int = 0
    grounding_per_query: bool = False

    def __post_init__(self) -> None:
        if self.audio_input is None:
            object.__setattr__(self, "audio_input", self.input)
        if self.audio_cached is None:
            object.__setattr__(self, "audio_cached", self.cached)


@dataclass(frozen=True)
class Price:
    """A model's prices, with the higher tier above `tier_threshold` prompt tokens.

    `image` is nano-USD per generated image (images calls); None: the model makes no images
    through the Vault.
    """

    model: str
    base: Rates
    tier_threshold: int | None = None
    above: Rates | None = None
    image: int | None = None

    def rates_for(self, prompt_tokens: int) -> Rates:
        """The rates for a request whose prompt has `prompt_tokens` tokens."""
        if self.above is not None and self.tier_threshold is not None and prompt_tokens > self.tier_threshold:
            return self.above
        return self.base


FREE = Price("free", Rates(0, 0, 0))


def price_from_row(row: ModelPrice) -> Price:
    """The `Price` of a price-table row (empty audio and above-tier prices follow their defaults)."""
    fee, per_query = row.grounding_fee_nano or 0, row.grounding_unit == "query"
    base = Rates(row.input_nano, row.output_nano, row.cached_nano, row.audio_input_nano, row.audio_cached_nano,
                 fee, per_query)
    above = None
    if row.tier_threshold is not None and row.input_above_nano is not None:
        above = Rates(row.input_above_nano, row.output_above_nano or row.output_nano,
                      row.cached_above_nano if row.cached_above_nano is not None else row.cached_nano,
                      grounding=fee, grounding_per_query=per_query)
    return Price(row.model, base, row.tier_threshold, above, row.image_nano)


def grounding_nano(usage: Usage, rates: Rates) -> int:
    """The Google Search grounding fee of `usage`: per grounded request, or per search query."""
    units = usage.grounding_queries if rates.grounding_per_query else min(usage.grounding_queries, 1)
    return units * rates.grounding


def cost_nano(usage: Usage, rates: Rates) -> int:
    """What `usage` costs: input by modality and caching, output (rounded half up), plus any grounding fee."""
    text, audio, text_cached, audio_cached = usage.input_split()
    numerator = (text * rates.input + audio * rates.audio_input + text_cached * rates.cached
                 + audio_cached * rates.audio_cached + usage.output * rates.output)
    return (numerator + PER_MILLION // 2) // PER_MILLION + grounding_nano(usage, rates)


def model_candidates(model: str) -> list[str]:
    """Names to look a model up by: as given, de-aliased, without a version suffix."""
    bare = model.strip().removeprefix("models/")
    names = [bare, ALIASES.get(bare, bare), VERSION_SUFFIX.sub("", bare)]
    return list(dict.fromkeys(name for name in names if name))


class PriceBook:
    """The price table and the models' token limits, cached in memory.

    Reloaded when a caller presents a price version other than the one loaded, and every
    `refresh_seconds` in any case. `default_limits` (input, output) answer for models missing
    from the model table.
    """

    def __init__(self, session_factory: Callable[[], Session], fallback: Price, refresh_seconds: float,
                 clock: Callable[[], float] = time.monotonic, default_limits: tuple[int, int] = (1_048_576, 65_536)):
        self._sessions = session_factory
        self.fallback = fallback
        self.default_limits = default_limits
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._prices: dict[str, Price] = {}
        self._limits: dict[str, tuple[int, int]] = {}
        self._version: int | None = None
        self._loaded_at = -math.inf
        self._lock = threading.Lock()

    @property
    def version(self) -> int | None:
        """The price version the book holds (None before the first load or without a stamp)."""
        return self._version

    @property
    def loaded(self) -> bool:
        """Whether the book has read the tables at least once."""
        return self._loaded_at != -math.inf

    def lookup(self, model: str, version: int | None = None) -> Price:
        """The price of `model` (normalised), or the fallback for unknown models.

        `version` is the current price version as the caller read it; the book reloads first
        if it holds another one.
        """
        self._ensure(version)
        return self._find(self._prices, model) or self.fallback

    def limits(self, model: str, version: int | None = None) -> tuple[int, int]:
        """`model`'s (input, output) token limits, or `default_limits` for models not in the table."""
        self._ensure(version)
        return self._find(self._limits, model) or self.default_limits

    def refresh(self, version: int | None = None) -> None:
        """Re-read both tables now (unless another caller just loaded `version`)."""
        with self._lock, self._sessions() as session:
            if version is not None and version == self._version and not self._expired():
                return
            # The stamp first: a change committed between the reads makes the next request reload again.
            loaded_version = session.scalar(select(PRICE_VERSION))
            prices = {row.model: price_from_row(row) for row in session.scalars(select(ModelPrice))}
            limits = {row.model: (row.input_token_limit, row.output_token_limit)
                      for row in session.scalars(select(GeminiModel))}
            self._prices, self._limits, self._version = prices, limits, loaded_version
            self._loaded_at = self._clock()

    def _ensure(self, version: int | None) -> None:
        if self._expired() or (version is not None and version != self._version):
            self.refresh(version)

    def _expired(self) -> bool:
        return self._clock() - self._loaded_at >= self._refresh_seconds

    @staticmethod
    def _find(table: dict, model: str):
        return next((table[name] for name in model_candidates(model) if name in table), None)


def bump_price_version(session: Session) -> None:
    """Mark the price book changed; call in the same transaction as the change itself."""
    bump(session, PRICES)


@dataclass(frozen=True)
class PriceInput:
    """Prices as an admin enters them: USD per 1M tokens (cached input defaults to input;
    audio prices default to the text ones), the grounding fee in USD per 1,000 grounded
    prompts (or search queries when `grounding_unit` is `query`), and `image` in USD per
    generated image (None: no images)."""

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    tier_threshold: int | None = None
    input_above: Decimal | None = None
    output_above: Decimal | None = None
    cached_input_above: Decimal | None = None
    audio_input: Decimal | None = None
    cached_audio_input: Decimal | None = None
    grounding_fee: Decimal | None = None
    grounding_unit: str = "prompt"
    image: Decimal | None = None


def nano(value: Decimal | None) -> int | None:
    """A USD amount (None stays None) as nano-USD."""
    return None if value is None else usd_to_nano(value)


def write_price(session: Session, model: str, prices: PriceInput) -> ModelPrice:
    """Create or replace the prices of `model` without bumping the version (see `upsert_price`)."""
    row = session.get(ModelPrice, model) or ModelPrice(model=model)
    row.input_nano, row.output_nano = nano(prices.input), nano(prices.output)
    row.cached_nano = nano(prices.cached_input if prices.cached_input is not None else prices.input)
    row.tier_threshold = prices.tier_threshold
    row.input_above_nano, row.output_above_nano = nano(prices.input_above), nano(prices.output_above)
    row.cached_above_nano = nano(prices.cached_input_above)
    row.audio_input_nano, row.audio_cached_nano = nano(prices.audio_input), nano(prices.cached_audio_input)
    row.grounding_fee_nano = None if prices.grounding_fee is None else usd_to_nano(prices.grounding_fee / 1000)
    row.grounding_unit = prices.grounding_unit
    row.image_nano = nano(prices.image)
    session.add(row)
    return row


def upsert_price(session: Session, model: str, prices: PriceInput) -> ModelPrice:
    """Create or replace the prices of `model` (a bare model id) and bump the price version."""
    row = write_price(session, model, prices)
    bump_price_version(session)
    return row


def remove_price(session: Session, row: ModelPrice) -> None:
    """Delete a model's prices (it pays the fallback from then on) and bump the price version."""
    session.delete(row)
    bump_price_version(session)
