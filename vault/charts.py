"""Daily bar charts the pages draw as server-rendered SVG: stacked by model, with axes and a table.

`daily_chart` turns rows per day and model into everything the `bar_chart` macro draws: bars as
stacks of per-model segments in SVG coordinates, y ticks at round values with formatted labels,
x labels for dates, a compact value above each bar, a legend, a one-sentence summary for screen
readers, and the rows of the "Show as table" view. No layout happens in the template.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from vault.templating import number, usd

WIDTH, HEIGHT = 360, 200
LEFT, RIGHT, TOP, BOTTOM = 44, 4, 40, 22
PLOT_HEIGHT = HEIGHT - TOP - BOTTOM
MAX_SERIES = 5
OTHER = "other models"
COLORS = ("fill-indigo-500", "fill-sky-400", "fill-emerald-500", "fill-amber-400", "fill-rose-400", "fill-slate-400")
SWATCHES = ("bg-indigo-500", "bg-sky-400", "bg-emerald-500", "bg-amber-400", "bg-rose-400", "bg-slate-400")


@dataclass(frozen=True)
class Kind:
    """How a chart's values read: in full (`text`, for titles and the summary), in a table cell
    (`cell`, the unit in the caption) and short (`short`, on the chart)."""

    unit: str
    text: Callable[[int], str]
    short: Callable[[int], str]
    cell: Callable[[int], str]


def compact_number(value: int) -> str:
    """1234 → 1.2k, 2500000 → 2.5M: a count short enough to sit above a bar."""
    for size, suffix in ((10**9, "B"), (10**6, "M"), (10**3, "k")):
        if abs(value) >= size:
            return f"{value / size:.1f}".rstrip("0").rstrip(".") + suffix
    return str(value)


def compact_usd(nano: int) -> str:
    """nano-USD in at most about five characters: $12k, $3.4, $0.25, $0.003."""
    dollars = nano / 10**9
    if dollars == 0:
        return "$0"
    if abs(dollars) >= 1000:
        return "$" + compact_number(round(dollars))
    if abs(dollars) >= 10:
        return f"${dollars:.0f}"
    if abs(dollars) >= 0.01:
        return f"${dollars:.2f}".rstrip("0").rstrip(".")
    return f"${dollars:.1g}" if abs(dollars) >= 0.000001 else "<$0.000001"


REQUESTS = Kind("requests", lambda v: f"{number(v)} requests", compact_number, number)
TOKENS = Kind("tokens", lambda v: f"{number(v)} tokens", compact_number, number)
SPEND = Kind("spend (USD)", usd, compact_usd, usd)


@dataclass
class Chart:
    """What the `bar_chart` macro draws; coordinates are in the SVG's viewBox (WIDTH × HEIGHT)."""

    title: str
    summary: str
    bars: list[dict[str, Any]]
    ticks: list[dict[str, Any]]
    legend: list[dict[str, str]]
    columns: list[str]
    rows: list[list[str]]
    width: int = WIDTH
    height: int = HEIGHT
    baseline: float = TOP + PLOT_HEIGHT
    left: int = LEFT


def nice_step(peak: float, count: int = 4) -> int:
    """A round step (1, 2, 2.5 or 5 times a power of ten, at least 1) so `count` steps cover `peak`."""
    raw = max(peak / count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    return max(int(math.ceil(step)), 1)


def series_of(rows: list[dict[str, Any]], value: str) -> list[str]:
    """The models to show, largest first: the top few, then one series for the rest."""
    totals: dict[str, int] = {}
    for row in rows:
        model = row.get("model") or "unknown"
        totals[model] = totals.get(model, 0) + int(row[value] or 0)
    ranked = [model for model, total in sorted(totals.items(), key=lambda item: (-item[1], item[0])) if total]
    return ranked if len(ranked) <= MAX_SERIES + 1 else [*ranked[:MAX_SERIES], OTHER]


def per_day(rows: list[dict[str, Any]], value: str, series: list[str]) -> dict[str, dict[str, int]]:
    """{day: {series: value}}, the models past the top few summed into `OTHER`."""
    shown = set(series)
    days: dict[str, dict[str, int]] = {}
    for row in rows:
        model = row.get("model") or "unknown"
        name = model if model in shown else OTHER
        cell = days.setdefault(row["day"], {})
        cell[name] = cell.get(name, 0) + int(row[value] or 0)
    return days


def daily_chart(rows: list[dict[str, Any]], today: date, days: int, value: str, kind: Kind,
                title: str) -> Chart:
    """A chart of `value` per day for the last `days` days, stacked by model, from rows with
    `day` (YYYY-MM-DD), `model` and `value` (as `queries.by_day_and_model` returns them)."""
    series = series_of(rows, value)
    cells = per_day(rows, value, series)
    dates = [(today - timedelta(days=offset)).isoformat() for offset in range(days - 1, -1, -1)]
    totals = [sum(cells.get(day, {}).values()) for day in dates]
    step = nice_step(max(totals, default=0))
    top = step * max(math.ceil(max(totals, default=0) / step), 1)
    slot = (WIDTH - LEFT - RIGHT) / days
    bars = [bar(day, index, slot, cells.get(day, {}), series, top, kind) for index, day in enumerate(dates)]
    ticks = [{"y": round(TOP + PLOT_HEIGHT * (1 - v / top), 1), "label": kind.short(v)}
             for v in range(0, top + 1, step)]
    legend = [{"name": name, "swatch": SWATCHES[i]} for i, name in enumerate(series)] if len(series) > 1 else []
    columns = ["Day", *(series if len(series) > 1 else []), "Total"]
    table = [[day, *([kind.cell(cells.get(day, {}).get(name, 0)) for name in series] if len(series) > 1 else []),
              kind.cell(total)] for day, total in zip(dates, totals, strict=True)]
    return Chart(title=f"{title} ({kind.unit})", summary=summary(title, dates, totals, series, kind), bars=bars,
                 ticks=ticks, legend=legend, columns=columns, rows=table)


def bar(day: str, index: int, slot: float, cell: dict[str, int], series: list[str], top: int,
        kind: Kind) -> dict[str, Any]:
    """One day's stack: segments bottom-up in series order, its label and its value."""
    x, width = LEFT + index * slot + slot * 0.15, slot * 0.7
    y, segments = TOP + PLOT_HEIGHT, []
    for i, name in enumerate(series):
        amount = cell.get(name, 0)
        if amount:
            height = PLOT_HEIGHT * amount / top
            y -= height
            segments.append({"y": round(y, 2), "height": round(max(height, 0.5), 2), "color": COLORS[i],
                             "title": f"{day[5:]} · {name}: {kind.text(amount)}"})
    total = sum(cell.values())
    return {"day": day, "label": day[5:], "x": round(x, 2), "width": round(width, 2),
            "center": round(x + width / 2, 2),
            "top": round(y, 2), "value": total, "short": kind.short(total) if total else "",
            "title": f"{day}: {kind.text(total)}", "segments": segments, "show_label": index % 2 == 1}


def summary(title: str, dates: list[str], totals: list[int], series: list[str], kind: Kind) -> str:
    """The chart in one sentence, for screen readers."""
    if not any(totals):
        return f"{title}, {dates[0]} to {dates[-1]}: nothing yet."
    peak = max(range(len(totals)), key=lambda i: totals[i])
    models = f"; by model: {', '.join(series)}" if len(series) > 1 else ""
    return (f"{title}, {dates[0]} to {dates[-1]}: {kind.text(sum(totals))} in all, "
            f"highest {kind.text(totals[peak])} on {dates[peak]}{models}.")


def cost_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of `by_day_and_model` with their cost (decimal USD) as whole nano-USD in `cost_nano`."""
    return [row | {"cost_nano": round(float(row["cost"]) * 10**9)} for row in rows]
