"""The daily charts (vault.charts): stacks per model, round y ticks, labels, the table view."""

from datetime import date

import pytest

from vault import charts

TODAY = date(2026, 3, 14)


def rows(*items):
    return [{"day": day, "model": model, "requests": value, "cost_nano": value} for day, model, value in items]


def test_bars_stack_per_model_with_values_and_a_table():
    chart = charts.daily_chart(rows(("2026-03-13", "gemini-2.5-flash", 30), ("2026-03-13", "gemini-2.5-pro", 10),
                                    ("2026-03-14", "gemini-2.5-pro", 5)), TODAY, 3, "requests", charts.REQUESTS,
                               "Requests per day")
    assert [bar["day"] for bar in chart.bars] == ["2026-03-12", "2026-03-13", "2026-03-14"]
    empty, busy, last = chart.bars
    assert empty["segments"] == [] and empty["short"] == ""
    assert [s["title"] for s in busy["segments"]] == ["03-13 · gemini-2.5-flash: 30 requests",
                                                      "03-13 · gemini-2.5-pro: 10 requests"]
    assert busy["short"] == "40" and busy["title"] == "2026-03-13: 40 requests"
    # Segments sit on each other, bottom-up, and the bar's height is proportional to its total.
    lower, upper = busy["segments"]
    assert upper["y"] + upper["height"] == pytest.approx(lower["y"], abs=0.01)
    assert lower["y"] + lower["height"] == pytest.approx(chart.baseline, abs=0.01)
    assert [item["name"] for item in chart.legend] == ["gemini-2.5-flash", "gemini-2.5-pro"]
    assert chart.columns == ["Day", "gemini-2.5-flash", "gemini-2.5-pro", "Total"]
    assert chart.rows[1] == ["2026-03-13", "30", "10", "40"]
    assert chart.title == "Requests per day (requests)"
    assert [tick["label"] for tick in chart.ticks] == ["0", "10", "20", "30", "40"]
    assert chart.summary == ("Requests per day, 2026-03-12 to 2026-03-14: 45 requests in all, highest 40 requests "
                             "on 2026-03-13; by model: gemini-2.5-flash, gemini-2.5-pro.")


def test_models_past_the_top_five_are_one_series():
    data = rows(*[("2026-03-14", f"model-{n}", 10 + n) for n in range(8)])
    chart = charts.daily_chart(data, TODAY, 1, "requests", charts.REQUESTS, "Requests")
    names = [item["name"] for item in chart.legend]
    assert names == ["model-7", "model-6", "model-5", "model-4", "model-3", charts.OTHER]
    assert chart.rows[0][-2:] == ["33", "108"]  # 10 + 11 + 12 in "other"; 108 in all


def test_one_model_draws_plain_bars_and_no_data_says_so():
    chart = charts.daily_chart([], TODAY, 14, "requests", charts.REQUESTS, "Requests per day")
    assert len(chart.bars) == 14 and chart.legend == [] and chart.columns == ["Day", "Total"]
    assert chart.summary.endswith("nothing yet.")
    assert [tick["label"] for tick in chart.ticks] == ["0", "1"]


def test_spend_reads_in_dollars():
    chart = charts.daily_chart(rows(("2026-03-14", "m", 2_500_000_000)), TODAY, 2, "cost_nano", charts.SPEND, "Spend")
    assert chart.bars[-1]["short"] == "$2.5" and chart.bars[-1]["title"] == "2026-03-14: $2.50"
    assert [tick["label"] for tick in chart.ticks] == ["$0", "$1", "$2", "$3"]


@pytest.mark.parametrize(("value", "text"), [(0, "0"), (999, "999"), (1234, "1.2k"), (2_000_000, "2M"),
                                             (3_450_000_000, "3.5B")])
def test_compact_numbers(value, text):
    assert charts.compact_number(value) == text


@pytest.mark.parametrize(("nano", "text"), [(0, "$0"), (3_000_000, "$0.003"), (250_000_000, "$0.25"),
                                            (12_400_000_000, "$12"), (12_345 * 10**9, "$12.3k"), (5, "<$0.000001")])
def test_compact_usd(nano, text):
    assert charts.compact_usd(nano) == text


@pytest.mark.parametrize(("peak", "step"), [(0, 1), (3, 1), (40, 10), (45, 20), (1000, 250), (7_300_000, 2_000_000)])
def test_round_steps(peak, step):
    assert charts.nice_step(peak) == step
