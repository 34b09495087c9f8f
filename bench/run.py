"""`make bench`: the Vault against the stack's floor and the bare fake upstream, in one run.

    .venv/bin/python -m bench.run [--quick] [--repeats 3] [--streams-5000] [--rows N]

Loopback only. The gateway under test is pinned to SUT_CPUS (default "1"); the fake upstream
and the load generators share LOAD_CPUS ("0"). Targets, all measured in the same run:

  direct        wrk straight at the fake upstream (bench/fake_upstream.py)
  floor         bench/floor.py: Flask + gunicorn/gevent + requests pass-through, no database
  vault/gemini  the Vault (gunicorn -c gunicorn.conf.py wsgi:app, one worker): native
                generateContent with x-goog-api-key
  vault/openai  the same Vault: /v1/chat/completions with Authorization: Bearer

Per target, after a discarded warm-up: wrk at concurrency 1, 16 and 64 (req/s, p50/p99,
errors, the gateway's CPU ms per call read from /proc for master + workers, peak RSS); 64 and
512 concurrent SSE streams (TTFB, total time, ok/failed, peak RSS); idle RSS after start.
Figures are the median of --repeats runs. The report sets the ratios against the floor beside
the issue's targets.

Extra modes:
  --streams-5000  hold 5,000 streams open at once on one worker (floor and Vault; the fake
                  keeps them silent after a first chunk)
  --rows N        PostgreSQL only: seed N usage records for the bench user, then measure the
                  Vault's plain calls again against the same run's empty database

Environment: BENCH_DATABASE_URL (a postgresql:// server; the run makes a throw-away database
beside the one named and drops it; default: SQLite in a temp folder), SUT_CPUS, LOAD_CPUS,
MOCK_STREAM_CHUNKS (20), MOCK_STREAM_DELAY_MS (50). Needs `wrk` and `taskset`
(apt-get install -y wrk). Writes bench/results/latest.json and latest.md.
"""

import argparse
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from bench.database import is_postgresql, scratch_database, seed_usage
from bench.load import MIB, run_hold, run_streams, run_wrk
from bench.processes import LOAD_CPUS, SUT_CPUS, BenchError, Services, raise_open_files, tool, tree_usage
from bench.report import render, summarize_calls, summarize_streams, write
from bench.targets import (
    BENCH_ACCOUNT,
    BENCH_DIR,
    BIN,
    UPSTREAM_KEYS,
    Endpoint,
    Gateway,
    start_fake,
    start_floor,
    start_vault,
)

WORKER_CONNECTIONS = 1000  # the Vault's default (VAULT_WORKER_CONNECTIONS); the floor gets the same
HOLD_STREAMS, HOLD_CONNECTIONS = 5000, 6000
HOLD_SILENCE_MS = 600_000  # the fake's pause after the first chunk: longer than any hold run
OPEN_FILES = 16384  # 5,000 held streams: two sockets each in a gateway, one in the fake and the client


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 repeat, 3 s runs (about two minutes)")
    parser.add_argument("--repeats", type=int, help="runs per setting; the median is reported (3; quick 1)")
    parser.add_argument("--seconds", type=float, help="length of one wrk run (10; quick 3)")
    parser.add_argument("--stream-seconds", type=float, help="length of one stream run (8; quick 3)")
    parser.add_argument("--conc", default="1,16,64", help="wrk concurrencies")
    parser.add_argument("--stream-conc", default="64,512", help="concurrent open streams")
    parser.add_argument("--streams-5000", action="store_true", help="also hold 5,000 open streams on one worker")
    parser.add_argument("--rows", type=int, default=0, help="PostgreSQL: also measure with this many usage records")
    args = parser.parse_args()
    defaults = (1, 3, 3) if args.quick else (3, 10, 8)
    args.repeats, args.seconds, args.stream_seconds = (
        given or default for given, default in zip((args.repeats, args.seconds, args.stream_seconds), defaults,
                                                   strict=True))
    args.concurrency = [int(value) for value in args.conc.split(",")]
    args.stream_concurrency = [int(value) for value in args.stream_conc.split(",")]
    args.chunks = int(os.environ.get("MOCK_STREAM_CHUNKS", "20"))
    args.delay_ms = float(os.environ.get("MOCK_STREAM_DELAY_MS", "50"))
    args.database_url = os.environ.get("BENCH_DATABASE_URL") or None
    return args


def cpu_set(spec: str) -> set[int]:
    """taskset's CPU list ("1", "0,2", "2-3") as a set."""
    cpus = set()
    for part in spec.split(","):
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


def preflight(args: argparse.Namespace) -> None:
    """Refuse to start, with a clear message, what cannot run to the end."""
    tool("wrk", "apt-get install -y wrk")
    tool("taskset", "apt-get install -y util-linux")
    for name in ("gunicorn", "flask"):
        if not (BIN / name).exists():
            raise BenchError(f"{BIN / name} is missing: run `make install-dev` first")
    available = os.sched_getaffinity(0)
    for name, spec in (("SUT_CPUS", SUT_CPUS), ("LOAD_CPUS", LOAD_CPUS)):
        if not cpu_set(spec) <= available:
            raise BenchError(f"{name}={spec} names CPUs this machine lacks (it has {sorted(available)}); set "
                             "SUT_CPUS and LOAD_CPUS")
    if args.database_url and not is_postgresql(args.database_url):
        raise BenchError("BENCH_DATABASE_URL must be a postgresql:// URL (leave it unset for SQLite)")
    if args.rows and not args.database_url:
        raise BenchError("--rows needs PostgreSQL: set BENCH_DATABASE_URL=postgresql://user@host:5432/bench_scratch")
    os.sched_setaffinity(0, cpu_set(LOAD_CPUS))  # the harness's own sampling stays off the gateway's CPUs
    open_files = raise_open_files(OPEN_FILES)  # 512 streams already need more than a default 1024
    if args.streams_5000 and open_files < 2 * HOLD_STREAMS + 1000:
        raise BenchError(f"--streams-5000 needs {2 * HOLD_STREAMS + 1000} open files per process "
                         "(ulimit -Hn is lower)")


def say(message: str) -> None:
    print(message, flush=True)


def measure_calls(endpoint: Endpoint, args: argparse.Namespace) -> dict:
    """wrk at each concurrency, --repeats times each: the summaries by concurrency."""
    calls = {}
    for concurrency in args.concurrency:
        runs = []
        for _ in range(args.repeats):
            run = run_wrk(endpoint, concurrency, args.seconds)
            say(f"  c={concurrency:<3} {run['rps']:9.1f} req/s  p50 {run['p50_ms']:7.2f} ms  "
                f"p99 {run['p99_ms']:7.2f} ms  errors {run['errors']}  CPU/call {fmt_ms(run['cpu_ms_per_call'])}")
            runs.append(run)
        calls[concurrency] = summarize_calls(runs)
    return calls


def measure_streams(endpoint: Endpoint, args: argparse.Namespace) -> dict:
    """Each stream concurrency, --repeats times: the summaries by number of open streams."""
    streams = {}
    for concurrency in args.stream_concurrency:
        runs = []
        for _ in range(args.repeats):
            run = run_streams(endpoint, concurrency, args.stream_seconds, args.chunks)
            say(f"  {concurrency:>4} streams  ok {run['streams_ok']}  failed {run['streams_failed']}"
                f"  TTFB p50 {run['ttfb_p50_ms']} ms  p99 {run['ttfb_p99_ms']} ms  total p50 {run['total_p50_ms']} ms"
                + (f"  {run['failures']}" if run["failures"] else ""))
            runs.append(run)
        streams[concurrency] = summarize_streams(runs)
    return streams


def fmt_ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f} ms"


def measure_endpoint(endpoint: Endpoint, args: argparse.Namespace) -> dict:
    say(f"== {endpoint.label}")
    run_wrk(endpoint, 16, 2)  # warm-up (imports, pools, caches), discarded
    return {"calls": measure_calls(endpoint, args), "streams": measure_streams(endpoint, args)}


def idle_rss_mb(gateway: Gateway) -> float:
    """RSS of master + worker a moment after start, before any load."""
    time.sleep(1)
    return tree_usage(gateway.service.pid)[0] / MIB


def start_gateway(results: dict, name: str, start: Callable[[], Gateway]) -> Gateway | None:
    """Start one gateway; on failure record why and go on with the others."""
    say(f"-- starting {name}")
    try:
        return start()
    except (BenchError, OSError) as exc:
        say(f"!! {name} did not start: {exc}")
        results["failed"][name] = str(exc)
        return None


def measure_gateway(results: dict, services: Services, gateway: Gateway, args: argparse.Namespace) -> None:
    """Every endpoint of a started gateway, then (Vault, --rows) the same again with seeded rows."""
    idle = idle_rss_mb(gateway)
    say(f"   {gateway.name} pid {gateway.service.pid}, idle RSS {idle:.1f} MB")
    try:
        for endpoint in gateway.endpoints():
            results["targets"][endpoint.label] = {"idle_rss_mb": idle} | measure_endpoint(endpoint, args)
        if gateway.name == "vault" and args.rows:
            results["rows"] = measure_with_rows(gateway, args)
    except BenchError as exc:
        say(f"!! {gateway.name} failed while measured: {exc}")
        results["failed"][gateway.name] = str(exc)
    finally:
        services.stop(gateway.service)


def measure_with_rows(gateway: Gateway, args: argparse.Namespace) -> dict:
    say(f"-- seeding {args.rows:,} usage records")
    seconds = seed_usage(args.database_url, BENCH_ACCOUNT["email"], args.rows)
    say(f"   seeded in {seconds:.1f} s")
    targets = {}
    for endpoint in gateway.endpoints():
        say(f"== {endpoint.label} with {args.rows:,} rows")
        run_wrk(endpoint, 16, 2)
        targets[endpoint.label] = {"calls": measure_calls(endpoint, args)}
    return {"rows": args.rows, "seed_seconds": seconds, "targets": targets}


def measure_hold(results: dict, services: Services, args: argparse.Namespace) -> dict:
    """5,000 streams held at once through the floor and the Vault, each on its own fake."""
    fake, upstream = start_fake(services, chunks=2, delay_ms=HOLD_SILENCE_MS, name="fake-hold")
    starts = {"floor": lambda: start_floor(services, upstream, HOLD_CONNECTIONS, name="floor-hold"),
              "vault": lambda: start_vault(services, upstream, args.database_url, HOLD_CONNECTIONS, name="vault-hold")}
    hold = {}
    for name, start in starts.items():
        gateway = start_gateway(results, f"{name} ({HOLD_STREAMS:,} streams)", start)
        if gateway is None:
            continue
        try:
            hold[name] = run_hold(gateway.endpoints()[0], HOLD_STREAMS, hold_seconds=5, open_timeout=60)
            say(f"   {name}: {hold[name]['held']:,}/{HOLD_STREAMS:,} held, peak RSS "
                f"{hold[name]['peak_rss_mb']:.1f} MB {hold[name]['failures'] or ''}")
        finally:
            services.stop(gateway.service)
    services.stop(fake)
    return hold


def metadata(args: argparse.Namespace) -> dict:
    database = "PostgreSQL (throw-away database)" if args.database_url else "SQLite in a temp folder"
    return {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "cpus": os.cpu_count(), "sut_cpus": SUT_CPUS,
            "load_cpus": LOAD_CPUS, "database": database, "repeats": args.repeats, "seconds": args.seconds,
            "stream_seconds": args.stream_seconds, "stream_chunks": args.chunks, "stream_delay_ms": args.delay_ms,
            "concurrency": args.concurrency, "stream_concurrency": args.stream_concurrency, "quick": args.quick}


def benchmark(args: argparse.Namespace, services: Services) -> dict:
    """Every measurement of the run, as one results dictionary."""
    results = {"meta": metadata(args), "targets": {}, "failed": {}}
    _, upstream = start_fake(services, args.chunks, args.delay_ms)
    results["targets"]["direct"] = measure_endpoint(Endpoint("direct", upstream, "gemini", UPSTREAM_KEYS[0]), args)
    starts = {"floor": lambda: start_floor(services, upstream, WORKER_CONNECTIONS),
              "vault": lambda: start_vault(services, upstream, args.database_url)}
    for name, start in starts.items():
        if gateway := start_gateway(results, name, start):
            measure_gateway(results, services, gateway, args)
    if args.streams_5000:
        results["hold"] = measure_hold(results, services, args)
    return results


def main() -> int:
    args = parse_args()
    # Both unwind the `with` blocks, which stop every child (SIGINT even when started from a script with `&`).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        preflight(args)
        with tempfile.TemporaryDirectory(prefix="vault-bench-") as workdir, ExitStack() as stack:
            if args.database_url:
                args.database_url = stack.enter_context(scratch_database(args.database_url))
            results = benchmark(args, stack.enter_context(Services(Path(workdir))))
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted; every process it started has been stopped", file=sys.stderr)
        return 130
    markdown = render(results)
    write(results, markdown, BENCH_DIR / "results")
    say("\n" + markdown)
    say(f"written: {BENCH_DIR / 'results' / 'latest.md'} and latest.json")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
