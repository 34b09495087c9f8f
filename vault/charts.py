"""Daily series for the small bar charts the pages draw as SVG."""

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any


def daily_bars(rows: list[dict[str, Any]], today: date, days: int, value: str,
               text: Callable[[int], str]) -> list[dict[str, Any]]:
    """One bar per day for the last `days` days, from rows with `day` (YYYY-MM-DD) and `value`.

    Heights are percentages of the largest day, so the tallest bar fills the chart.
    """
    totals: dict[str, int] = {}
    for row in rows:
        totals[row["day"]] = totals.get(row["day"], 0) + int(row[value] or 0)
    series = [(today - timedelta(days=offset)).isoformat() for offset in range(days - 1, -1, -1)]
    peak = max((totals.get(day, 0) for day in series), default=0) or 1
    return [{"label": day[5:], "value": totals.get(day, 0), "height": round(totals.get(day, 0) * 100 / peak, 1),
             "text": text(totals.get(day, 0))} for day in series]
