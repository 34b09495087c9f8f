"""Jinja filters for pages: money, numbers and timestamps in one consistent form."""

from datetime import datetime
from decimal import Decimal

from flask import Flask

from vault.billing.money import nano_to_usd
from vault.clock import isoformat
from vault.idempotency import new_token


def usd(nano: int | None) -> str:
    """nano-USD as dollars: cents for amounts of a dollar or more, up to six decimals below."""
    if nano is None:
        return "—"
    amount = nano_to_usd(nano)
    sign, magnitude = ("-" if amount < 0 else ""), abs(amount)
    if magnitude >= 1 or magnitude == 0:
        return f"{sign}${magnitude:,.2f}"
    text = f"{magnitude:.6f}".rstrip("0")
    if len(text.split(".")[1]) < 2:
        text = f"{magnitude:.2f}"
    if Decimal(text) == 0:
        return f"{sign}<$0.000001"
    return f"{sign}${text}"


def usd_per_million(nano: int | None) -> str:
    """A price in nano-USD per 1M tokens as plain dollars (`1.25`)."""
    if nano is None:
        return ""
    return f"{(Decimal(nano) / 10**9).normalize():f}"


def number(value: int | float | None) -> str:
    """A count with thousands separators."""
    return "—" if value is None else f"{value:,}"


def iso(moment: datetime | None) -> str:
    return isoformat(moment) or ""


def register_filters(app: Flask) -> None:
    """Make the filters available to every template."""
    app.jinja_env.filters.update(usd=usd, usd_per_million=usd_per_million, number=number, isotime=iso)
    # A fresh token per rendered form: the `csrf()` macro puts one in every form (see vault.idempotency).
    app.jinja_env.globals.update(new_form_token=new_token)
