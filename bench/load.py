"""Load runs against one endpoint: `wrk` for plain calls, bench.streams for SSE streams.

Each run is a child process on the load CPUs, bounded in time, while the gateway's process
tree is measured (CPU seconds used, peak RSS sampled). Every function returns one plain dict
per run; bench.report turns runs into medians and ratios.
"""

import json
import os
import sys
from pathlib import Path

from bench.processes import LOAD_CPUS, BenchError, measured, pinned, run_bounded, tool
from bench.targets import PROJECT_ROOT, Endpoint

POST_LUA = Path(__file__).resolve().parent / "post.lua"
MIB = 2**20


def parse_line(output: str, prefix: str) -> dict:
    """The JSON summary a load child printed after `prefix`."""
    for line in output.splitlines():
        if line.startswith(prefix):
            return json.loads(line[len(prefix):])
    raise BenchError(f"no {prefix.strip()} line in the output: {output[-800:]}")


def run_wrk(endpoint: Endpoint, concurrency: int, seconds: float) -> dict:
    """`concurrency` keep-alive connections POSTing for `seconds`: req/s, latency, errors, CPU per call."""
    url, headers, body = endpoint.request(stream=False)
    env = dict(os.environ, WRK_BODY=body, WRK_HEADERS="\n".join(f"{k}: {v}" for k, v in headers.items()))
    argv = pinned(LOAD_CPUS, [tool("wrk", "apt-get install -y wrk"), "-t1", f"-c{concurrency}",
                              f"-d{seconds:g}s", "--timeout", "10s", "-s", str(POST_LUA), url])
    with measured(endpoint.pid) as usage:
        summary = parse_line(run_bounded(argv, env, timeout=seconds + 60), "WRKJSON ")
    requests = summary["requests"]
    errors = sum(summary[name] for name in ("errors_status", "errors_connect", "errors_read", "errors_write",
                                            "errors_timeout"))
    return {"requests": requests, "rps": requests / (summary["duration_us"] / 1e6), "p50_ms": summary["p50_us"] / 1000,
            "p99_ms": summary["p99_us"] / 1000, "errors": errors, "non_2xx": summary["errors_status"],
            "cpu_ms_per_call": usage.cpu_seconds * 1000 / requests if endpoint.pid and requests else None,
            "peak_rss_mb": usage.peak_rss_bytes / MIB if endpoint.pid else None}


def stream_client(endpoint: Endpoint, chunks: int, *options: str) -> list[str]:
    """The argv of bench.streams aimed at `endpoint`, pinned to the load CPUs."""
    url, headers, body = endpoint.request(stream=True)
    argv = [sys.executable, "-m", "bench.streams", "--url", url, "--body", body, "--expect-chunks", str(chunks),
            *options]
    for name, value in headers.items():
        argv += ["--header", f"{name}: {value}"]
    if endpoint.api == "openai":
        argv.append("--openai")
    return pinned(LOAD_CPUS, argv)


def run_streams(endpoint: Endpoint, concurrency: int, seconds: float, chunks: int) -> dict:
    """`concurrency` streams kept open for `seconds`: TTFB, total time, outcomes, peak RSS."""
    argv = stream_client(endpoint, chunks, "-c", str(concurrency), "--duration", f"{seconds:g}", "--grace", "30")
    with measured(endpoint.pid) as usage:
        result = parse_line(run_bounded(argv, dict(os.environ), timeout=seconds + 60, cwd=PROJECT_ROOT),
                            "STREAMJSON ")
    return result | {"peak_rss_mb": usage.peak_rss_bytes / MIB if endpoint.pid else None}


def run_hold(endpoint: Endpoint, count: int, hold_seconds: float, open_timeout: float) -> dict:
    """`count` streams held open at once (the fake keeps them silent after a first chunk); peak RSS."""
    argv = stream_client(endpoint, 2, "--hold", str(count), "--hold-seconds", f"{hold_seconds:g}",
                         "--open-timeout", f"{open_timeout:g}")
    with measured(endpoint.pid, interval=0.5) as usage:
        result = parse_line(run_bounded(argv, dict(os.environ), timeout=open_timeout + hold_seconds + 60,
                                        cwd=PROJECT_ROOT), "STREAMJSON ")
    return result | {"peak_rss_mb": usage.peak_rss_bytes / MIB if endpoint.pid else None}
