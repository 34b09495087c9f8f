"""The Gemini models Google lists, with their list prices and token limits, as seeded into the tables.

Source: https://ai.google.dev/gemini-api/docs/pricing (Standard tier, paid, USD) and
https://ai.google.dev/gemini-api/docs/models (token limits), taken on 2026-11-27 from stored
copies and transcriptions of those pages (dated 2026-07-04 to 2026-10-07); numbers marked
"unverified" were not found on Google's own pages and come from third-party listings, so
check them before relying on them.

What the columns mean: prices in USD per 1M tokens; `audio_input` / `cached_audio` are the
audio rates where Google prices audio apart (None: the text rate); the tier prices apply to
the whole request when the prompt exceeds `tier_threshold` tokens; `grounding` is USD per
1,000 Google Search grounded prompts (`unit="prompt"`, Gemini 2.x) or search queries
(`unit="query"`, Gemini 3.x); `image` is USD per generated image (Imagen, through
`/v1/images/generations`; their token prices are 0, as Google bills them per image only).
Google's free grounding allowance (1,500 prompts a day on Gemini 2.5, 5,000 queries a month
on Gemini 3) belongs to each Google project of the pool, and the Vault cannot tell whose
request used it, so every grounded request pays.

To update: edit `CATALOG` (and the date above) from the two pages, then run
`flask --app wsgi billing seed-prices` to add new models, or `--force` to overwrite the
seeded ones with the catalog (edits made by admins to those models are lost). Token limits
can also be read from the upstream itself: `flask --app wsgi billing refresh-models`.
"""

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.billing.prices import PriceInput, bump_price_version, write_price
from vault.clock import utcnow
from vault.models import GeminiModel, ModelPrice


@dataclass(frozen=True)
class CatalogModel:
    """One model as Google lists it (prices in USD: per 1M tokens, grounding per 1,000)."""

    model: str
    input_token_limit: int
    output_token_limit: int
    input: str
    output: str
    cached: str | None = None
    audio_input: str | None = None
    cached_audio: str | None = None
    tier_threshold: int | None = None
    input_above: str | None = None
    output_above: str | None = None
    cached_above: str | None = None
    grounding: str | None = None
    unit: str = "prompt"
    image: str | None = None

    def price_input(self) -> PriceInput:
        """The prices as `upsert_price` takes them."""
        def usd(value: str | None) -> Decimal | None:
            return None if value is None else Decimal(value)

        return PriceInput(
            input=Decimal(self.input), output=Decimal(self.output), cached_input=usd(self.cached),
            tier_threshold=self.tier_threshold, input_above=usd(self.input_above),
            output_above=usd(self.output_above), cached_input_above=usd(self.cached_above),
            audio_input=usd(self.audio_input), cached_audio_input=usd(self.cached_audio),
            grounding_fee=usd(self.grounding), grounding_unit=self.unit, image=usd(self.image),
        )


GEMINI_2_LIMITS = (1_048_576, 65_536)
CATALOG: tuple[CatalogModel, ...] = (
    # Gemini 3.x: Search grounding is billed per search query. Google also lists 3.6 and 3.8 Flash;
    # their model ids and full prices could not be verified here, so they pay the fallback until added.
    # gemini-3.5-flash: the models page says deprecated (routed to gemini-3.6-flash); cached price unverified.
    CatalogModel("gemini-3.5-flash", 1_048_576, 65_536, "1.50", "9.00", cached="0.15", grounding="14", unit="query"),
    # Cached prices and the output limit unverified (third-party listings); tiers as on the pricing page.
    CatalogModel("gemini-3.1-pro-preview", 1_048_576, 65_536, "2.00", "12.00", cached="0.20", tier_threshold=200_000,
                 input_above="4.00", output_above="18.00", cached_above="0.40", grounding="14", unit="query"),
    CatalogModel("gemini-3-pro-preview", 1_048_576, 65_536, "2.00", "12.00", cached="0.20", tier_threshold=200_000,
                 input_above="4.00", output_above="18.00", cached_above="0.40", grounding="14", unit="query"),
    # Cached audio unverified (assumed 10% of audio input, as on 2.5 Flash).
    CatalogModel("gemini-3-flash-preview", 1_048_576, 65_536, "0.50", "3.00", cached="0.05", audio_input="1.00",
                 cached_audio="0.10", grounding="14", unit="query"),
    # Gemini 2.5: Search grounding billed per grounded prompt.
    CatalogModel("gemini-2.5-pro", *GEMINI_2_LIMITS, "1.25", "10.00", cached="0.125", tier_threshold=200_000,
                 input_above="2.50", output_above="15.00", cached_above="0.25", grounding="35"),
    CatalogModel("gemini-2.5-flash", *GEMINI_2_LIMITS, "0.30", "2.50", cached="0.03", audio_input="1.00",
                 cached_audio="0.10", grounding="35"),
    CatalogModel("gemini-2.5-flash-lite", *GEMINI_2_LIMITS, "0.10", "0.40", cached="0.01", audio_input="0.30",
                 cached_audio="0.03", grounding="35"),
    # Gemini 2.0: shut down according to the models page; kept so that calls still answered are priced.
    CatalogModel("gemini-2.0-flash", 1_048_576, 8_192, "0.10", "0.40", cached="0.025", audio_input="0.70",
                 cached_audio="0.175", grounding="35"),
    # No context caching price and no Search grounding listed: cached input pays the input price.
    CatalogModel("gemini-2.0-flash-lite", 1_048_576, 8_192, "0.075", "0.30"),
    # Embeddings: input only; models.list reports an output limit of 1.
    CatalogModel("gemini-embedding-001", 2_048, 1, "0.15", "0"),
    # Imagen: per image, Standard tier, as the pricing page lists them (Google marks Imagen 4 deprecated in
    # favour of Gemini image models). Imagen 3's $0.03 is its price while it was listed, not re-verified here.
    # Token limits: 480 prompt tokens (Imagen's documented limit); the output limit is models.list's (unverified).
    CatalogModel("imagen-4.0-generate-001", 480, 8_192, "0", "0", image="0.04"),
    CatalogModel("imagen-4.0-ultra-generate-001", 480, 8_192, "0", "0", image="0.06"),
    CatalogModel("imagen-4.0-fast-generate-001", 480, 8_192, "0", "0", image="0.02"),
    CatalogModel("imagen-3.0-generate-002", 480, 8_192, "0", "0", image="0.03"),
)


def seed_prices(session: Session, force: bool = False) -> list[str]:
    """Add the catalog's prices for models missing from the price table (`force`: overwrite
    those present too); bump the price version if anything changed. Returns the models written."""
    present = set(session.scalars(select(ModelPrice.model)))
    written = [entry.model for entry in CATALOG if force or entry.model not in present]
    for entry in CATALOG:
        if entry.model in written:
            write_price(session, entry.model, entry.price_input())
    if written:
        bump_price_version(session)
    return written


def seed_models(session: Session, force: bool = False) -> list[str]:
    """Add the catalog's token limits for models missing from the model table (`force`:
    overwrite those present too); bump the price version if anything changed."""
    present = {row.model: row for row in session.scalars(select(GeminiModel))}
    written = []
    for entry in CATALOG:
        if entry.model in present and not force:
            continue
        row = present.get(entry.model) or GeminiModel(model=entry.model)
        row.input_token_limit, row.output_token_limit = entry.input_token_limit, entry.output_token_limit
        row.source, row.refreshed_at = "catalog", utcnow()
        session.add(row)
        written.append(entry.model)
    if written:
        bump_price_version(session)
    return written
