"""Turning runs into results: medians per setting, ratios against the floor, the markdown report.

The issue's performance targets are ratios against the floor measured in the same run
(absolute times move from run to run on shared machines), so the first table sets each
ratio beside its target; the detail tables below it hold the absolute figures.
"""

import json
import statistics
from pathlib import Path

TARGETS = {"cpu_x_floor": 1.30, "rps_x_floor": 0.75, "ttfb_x_floor": 1.50, "idle_rss_x_floor": 1.40,
           "hold_rss_mb": 300, "rows_cpu_x_empty": 1.10}


def median(values: list) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def peak(values: list) -> float | None:
    present = [value for value in values if value is not None]
    return max(present) if present else None


def summarize_calls(runs: list[dict]) -> dict:
    """Median req/s, latency and CPU per call over repeats; errors summed; RSS at its highest."""
    return {"rps": median([run["rps"] for run in runs]), "p50_ms": median([run["p50_ms"] for run in runs]),
            "p99_ms": median([run["p99_ms"] for run in runs]),
            "cpu_ms_per_call": median([run["cpu_ms_per_call"] for run in runs]),
            "errors": sum(run["errors"] for run in runs), "requests": sum(run["requests"] for run in runs),
            "peak_rss_mb": peak([run["peak_rss_mb"] for run in runs]), "runs": runs}


def summarize_streams(runs: list[dict]) -> dict:
    """Median TTFB and total time over repeats; streams and failures summed; RSS at its highest."""
    failures: dict[str, int] = {}
    for run in runs:
        for outcome, count in run["failures"].items():
            failures[outcome] = failures.get(outcome, 0) + count
    return {name: median([run[name] for run in runs])
            for name in ("ttfb_p50_ms", "ttfb_p99_ms", "total_p50_ms", "total_p99_ms")} | {
        "streams_ok": sum(run["streams_ok"] for run in runs),
        "streams_failed": sum(run["streams_failed"] for run in runs), "failures": failures,
        "peak_rss_mb": peak([run["peak_rss_mb"] for run in runs]), "runs": runs}


def ratio(value: float | None, base: float | None) -> float | None:
    return value / base if value is not None and base else None


def added_ttfb(results: dict, label: str, streams: int) -> float | None:
    """TTFB p50 of `label` minus the direct call's, at `streams` open streams."""
    try:
        return results["targets"][label]["streams"][streams]["ttfb_p50_ms"] - \
            results["targets"]["direct"]["streams"][streams]["ttfb_p50_ms"]
    except (KeyError, TypeError):
        return None


def verdict(value: float | None, limit: float, at_most: bool = True, digits: int = 3) -> str:
    if value is None:
        return "–"
    passed = value <= limit if at_most else value >= limit
    return f"{value:.{digits}f} {'✓' if passed else '✗'}"


def fmt(value, digits: int = 2) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"


def floor_check_rows(results: dict, labels: list[str]) -> list[list[str]]:
    """One row per floor-relative target: the check, the target, and each Vault API's ratio."""
    meta, targets = results["meta"], results["targets"]

    def per_call(name: str, concurrency: int, limit: float, at_most: bool) -> list[str]:
        floor = call_figure(targets, "floor", concurrency, name)
        return [verdict(ratio(call_figure(targets, label, concurrency, name), floor), limit, at_most)
                for label in labels]

    def per_ttfb(streams: int) -> list[str]:
        floor = added_ttfb(results, "floor", streams)
        floor = floor if floor and floor > 0 else None  # an added time of zero or less makes no ratio
        return [verdict(ratio(added_ttfb(results, label, streams), floor), TARGETS["ttfb_x_floor"])
                for label in labels]

    floor_idle = targets.get("floor", {}).get("idle_rss_mb")
    rows = [[f"CPU per call ×floor, c={c}", f"≤ {TARGETS['cpu_x_floor']:.2f}",
             *per_call("cpu_ms_per_call", c, TARGETS["cpu_x_floor"], True)] for c in meta["concurrency"]]
    rows += [[f"req/s ×floor, c={c}", f"≥ {TARGETS['rps_x_floor']:.2f}",
              *per_call("rps", c, TARGETS["rps_x_floor"], False)] for c in meta["concurrency"]]
    rows += [[f"added TTFB p50 ×floor's, {n} streams", f"≤ {TARGETS['ttfb_x_floor']:.2f}", *per_ttfb(n)]
             for n in meta["stream_concurrency"]]
    rows.append(["idle RSS ×floor", f"≤ {TARGETS['idle_rss_x_floor']:.2f}", *[
        verdict(ratio(targets.get(label, {}).get("idle_rss_mb"), floor_idle), TARGETS["idle_rss_x_floor"])
        for label in labels]])
    return rows


def call_figure(targets: dict, label: str, concurrency: int, name: str) -> float | None:
    return targets.get(label, {}).get("calls", {}).get(concurrency, {}).get(name)


def extra_check_rows(results: dict, labels: list[str]) -> list[list[str]]:
    """The rows of the two extra modes, when they ran."""
    rows = []
    if hold := results.get("hold", {}).get("vault"):
        passed = hold["held"] == hold["requested"] and (hold["peak_rss_mb"] or 0) <= TARGETS["hold_rss_mb"]
        cell = f"{hold['held']:,}/{hold['requested']:,} held, {fmt(hold['peak_rss_mb'], 0)} MB {'✓' if passed else '✗'}"
        rows.append([f"{hold['requested']:,} open streams, one worker", f"all held, ≤ {TARGETS['hold_rss_mb']} MB",
                     *[cell if label.endswith("gemini") else "–" for label in labels]])
    if rows_mode := results.get("rows"):
        for concurrency in results["meta"]["concurrency"]:
            rows.append([f"CPU per call with {rows_mode['rows']:,} rows ×empty, c={concurrency}",
                         f"≤ {TARGETS['rows_cpu_x_empty']:.2f}"] + [
                verdict(ratio(call_figure(rows_mode["targets"], label, concurrency, "cpu_ms_per_call"),
                              call_figure(results["targets"], label, concurrency, "cpu_ms_per_call")),
                        TARGETS["rows_cpu_x_empty"]) for label in labels])
    return rows


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(row) + " |"
                                                                           for row in rows]


def calls_table(targets: dict) -> list[str]:
    direct = targets.get("direct", {}).get("calls", {})
    rows = []
    for label, target in targets.items():
        for concurrency, figures in target.get("calls", {}).items():
            base = direct.get(concurrency, {}).get("p50_ms")
            added = figures["p50_ms"] - base if base is not None and label != "direct" else None
            rows.append([label, str(concurrency), fmt(figures["rps"], 0), fmt(figures["p50_ms"]),
                         fmt(figures["p99_ms"]), fmt(added), fmt(figures["cpu_ms_per_call"], 3),
                         fmt(figures["peak_rss_mb"], 1), fmt(figures["errors"])])
    return table(["target", "conc", "req/s", "p50 ms", "p99 ms", "added p50 ms", "CPU ms/call", "peak RSS MB",
                  "errors"], rows)


def streams_table(results: dict) -> list[str]:
    rows = []
    for label, target in results["targets"].items():
        for streams, figures in target.get("streams", {}).items():
            added = added_ttfb(results, label, streams) if label != "direct" else None
            rows.append([label, str(streams), fmt(figures["ttfb_p50_ms"]), fmt(figures["ttfb_p99_ms"]), fmt(added),
                         fmt(figures["total_p50_ms"], 1), f"{figures['streams_ok']:,}/{figures['streams_failed']:,}",
                         fmt(figures["peak_rss_mb"], 1)])
    return table(["target", "open streams", "TTFB p50 ms", "TTFB p99 ms", "added TTFB p50 ms", "total p50 ms",
                  "ok/failed", "peak RSS MB"], rows)


def hold_table(hold: dict) -> list[str]:
    rows = [[name, fmt(run["requested"]), fmt(run["opened"]), fmt(run["held"]), fmt(run["ttfb_p50_ms"]),
             fmt(run["peak_rss_mb"], 1), json.dumps(run["failures"]) if run["failures"] else "–"]
            for name, run in hold.items()]
    return table(["target", "requested", "opened", "held at once", "TTFB p50 ms", "peak RSS MB", "failures"], rows)


def rows_table(results: dict) -> list[str]:
    rows = []
    for label, target in results["rows"]["targets"].items():
        for concurrency, figures in target["calls"].items():
            empty = results["targets"][label]["calls"][concurrency]
            rows.append([label, str(concurrency), fmt(empty["cpu_ms_per_call"], 3), fmt(figures["cpu_ms_per_call"], 3),
                         fmt(empty["rps"], 0), fmt(figures["rps"], 0), fmt(empty["p50_ms"]), fmt(figures["p50_ms"]),
                         fmt(figures["errors"])])
    return table(["target", "conc", "CPU ms/call empty", "with rows", "req/s empty", "with rows", "p50 ms empty",
                  "with rows", "errors with rows"], rows)


def render(results: dict) -> str:
    """The whole markdown report."""
    meta, targets = results["meta"], results["targets"]
    labels = [label for label in targets if label.startswith("vault")] or ["vault/gemini", "vault/openai"]
    lines = [f"## Gemini-Vault benchmark, {meta['started']}", "",
             f"Gateway on CPU {meta['sut_cpus']}, fake upstream and load on CPU {meta['load_cpus']} ({meta['cpus']} "
             f"CPUs); one gunicorn/gevent worker; {meta['database']}; median of {meta['repeats']} run(s) of "
             f"{meta['seconds']:g} s (streams {meta['stream_seconds']:g} s, {meta['stream_chunks']} chunks "
             f"{meta['stream_delay_ms']:g} ms apart).", "", "### Targets: ratios against the floor, same run", ""]
    lines += table(["check", "target", *labels], floor_check_rows(results, labels) + extra_check_rows(results, labels))
    for name, problem in results.get("failed", {}).items():
        lines += ["", f"**{name} was not measured:** {problem.splitlines()[0] if problem else ''}"]
    lines += ["", "### Plain calls (wrk)", ""] + calls_table(targets)
    lines += ["", "### Streams", ""] + streams_table(results)
    idle = ", ".join(f"{label} {fmt(target.get('idle_rss_mb'), 1)}" for label, target in targets.items()
                     if target.get("idle_rss_mb"))
    lines += ["", f"Idle RSS MB (master + worker): {idle or '–'}"]
    if results.get("hold"):
        lines += ["", "### Open streams held by one worker", ""] + hold_table(results["hold"])
    if results.get("rows"):
        lines += ["", f"### With {results['rows']['rows']:,} usage records (seeded in "
                      f"{results['rows']['seed_seconds']:.1f} s) against the same run's empty database", ""]
        lines += rows_table(results)
    return "\n".join(lines) + "\n"


def json_ready(value):
    """`value` with every dictionary key a string (concurrencies are integers here)."""
    if isinstance(value, dict):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_ready(item) for item in value]
    return value


def write(results: dict, markdown: str, folder: Path) -> None:
    """bench/results/latest.json and latest.md."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "latest.json").write_text(json.dumps(json_ready(results), indent=1) + "\n")
    (folder / "latest.md").write_text(markdown)
