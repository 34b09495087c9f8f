"""Money as integers: every amount is stored and summed in nano-USD (1 USD = 10⁹).

Integers keep sums exact on SQLite and PostgreSQL alike, and a nano-USD is fine enough to
price a single token of the cheapest model.
"""

from decimal import ROUND_HALF_EVEN, Decimal

NANO_PER_USD = 10**9


def usd_to_nano(amount: Decimal | int | str) -> int:
    """Convert a USD amount to nano-USD, rounding half to even below a nano-USD."""
    value = Decimal(str(amount)) * NANO_PER_USD
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def nano_to_usd(nano: int) -> Decimal:
    """Convert nano-USD back to an exact USD Decimal."""
    return Decimal(nano) / NANO_PER_USD


def nano_to_json(nano: int) -> float:
    """A USD amount as a JSON number (exact to the nano-USD for any realistic balance)."""
    return float(nano_to_usd(nano))
