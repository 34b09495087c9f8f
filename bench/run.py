"""Benchmark: the Vault against calling the fake upstream directly, in the same run.

    make bench                    # or: .venv/bin/python -m bench.run [--quick]

Starts the fake upstream (its own gevent process) and one Vault worker under gunicorn +
gevent on SQLite with authentication on, then measures, for both paths:
non-streaming throughput and latency at concurrency 1, 16 and 64; the Vault worker's CPU
time per request; time-to-first-byte of 64 concurrent streams; and how many open streams
one worker holds, with its memory. Prints a table of ratios and writes
`bench/results/latest.json`.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402
import requests  # noqa: E402
from requests.adapters import HTTPAdapter  # noqa: E402

from tests.e2e.server import PROJECT_ROOT, VaultServer, flask_cli, vault_environment  # noqa: E402

PROMPT = {"contents": [{"role": "user", "parts": [{"text": "Say hi to the benchmark"}]}]}
UPSTREAM_KEYS = ["AIzaBench-upstream-key-00000000000001", "AIzaBench-upstream-key-00000000000002"]
TARGETS = {"cpu_ms_per_request": 2.0, "added_p50_ms_c1": 3.0, "open_streams": 1000}


@dataclass
class Target:
    """Where requests go: straight to the fake, or through the Vault."""

    name: str
    base_url: str
    key: str

    def url(self, model: str, action: str) -> str:
        return f"{self.base_url}/v1beta/models/{model}:{action}"


def session(size: int) -> requests.Session:
    http = requests.Session()
    http.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=size))
    return http


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def unary(target: Target, concurrency: int, total: int) -> dict:
    """`total` generateContent calls from `concurrency` greenlets: req/s and latency (ms)."""
    http, latencies = session(concurrency), []
    url, headers = target.url("gemini-2.5-flash", "generateContent"), {"x-goog-api-key": target.key}

    def worker(count: int) -> None:
        for _ in range(count):
            started = time.perf_counter()
            response = http.post(url, json=PROMPT, headers=headers, timeout=30)
            latencies.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text[:200]

    started = time.perf_counter()
    gevent.joinall([gevent.spawn(worker, total // concurrency) for _ in range(concurrency)], raise_error=True)
    elapsed = time.perf_counter() - started
    return {"rps": len(latencies) / elapsed, "p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99)}


def first_bytes(target: Target, concurrency: int, rounds: int) -> dict:
    """Time to first byte (ms) of `concurrency` simultaneous streams, `rounds` times."""
    http, ttfb = session(concurrency), []
    url, headers = target.url("bench-stream", "streamGenerateContent") + "?alt=sse", {"x-goog-api-key": target.key}

    def stream() -> None:
        started = time.perf_counter()
        with http.post(url, json=PROMPT, headers=headers, stream=True, timeout=30) as response:
            assert response.status_code == 200
            chunks = response.iter_content(chunk_size=None)
            next(chunks)
            ttfb.append((time.perf_counter() - started) * 1000)
            for _ in chunks:
                pass

    for _ in range(rounds):
        gevent.joinall([gevent.spawn(stream) for _ in range(concurrency)], raise_error=True)
    return {"p50": percentile(ttfb, 0.5), "p99": percentile(ttfb, 0.99)}


def hold_streams(target: Target, count: int, worker_pid: int) -> dict:
    """Open `count` streams that the upstream holds open; count how many flow at once."""
    opened, release, errors = [], gevent.event.Event(), []
    url, headers = target.url("bench-hold", "streamGenerateContent") + "?alt=sse", {"x-goog-api-key": target.key}

    def stream() -> None:
        try:
            response = requests.post(url, json=PROMPT, headers=headers, stream=True, timeout=60)
            next(response.iter_content(chunk_size=None))
            opened.append(1)
            release.wait()
            response.close()
        except Exception as exc:  # noqa: BLE001 - counted, not raised: the count is the result
            errors.append(type(exc).__name__)

    before = rss_kib(worker_pid)
    greenlets = [gevent.spawn(stream) for _ in range(count)]
    deadline = time.monotonic() + 30
    while len(opened) + len(errors) < count and time.monotonic() < deadline:
        gevent.sleep(0.05)
    held, during = len(opened), rss_kib(worker_pid)
    release.set()
    gevent.joinall(greenlets)
    return {"held": held, "errors": len(errors), "rss_idle_mib": before / 1024, "rss_held_mib": during / 1024,
            "kib_per_stream": (during - before) / max(held, 1)}


def proc_stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    fields = proc_stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def worker_of(master_pid: int) -> int:
    """The single gunicorn worker forked by `master_pid`."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(proc_stat(int(entry.name))[1]) == master_pid:
                    return int(entry.name)
            except (OSError, ValueError, IndexError):
                continue
    raise RuntimeError("no gunicorn worker found")


def start_fake(hold: float) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, "-m", "bench.fake_upstream", "--hold", str(hold)], cwd=PROJECT_ROOT,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return process, process.stdout.readline().strip()


def start_vault(workdir: Path, fake_url: str) -> tuple[VaultServer, str]:
    environ = vault_environment(f"sqlite:///{workdir / 'bench.sqlite3'}", workdir / "instance") | {
        "GEMINI_BASE_URL": fake_url, "GEMINI_API_KEYS": ",".join(UPSTREAM_KEYS), "WEB_CONCURRENCY": "1",
        "VAULT_WORKER_CONNECTIONS": "2000", "VAULT_UPSTREAM_POOL_SIZE": "2000", "VAULT_LOG_LEVEL": "WARNING",
        "VAULT_UPSTREAM_READ_TIMEOUT": "60", "VAULT_DEFAULT_BALANCE": "10000",
    }
    upgraded = flask_cli(environ, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    server = VaultServer(environ).start()
    account = {"email": "bench@example.com", "password": "benchmark password"}
    requests.post(f"{server.base_url}/auth/users/", json=account, timeout=30).raise_for_status()
    token = requests.post(f"{server.base_url}/auth/token", json=account, timeout=30).json()["access_token"]
    key = requests.post(f"{server.base_url}/api-keys/", json={"name": "bench"}, timeout=30,
                        headers={"Authorization": f"Bearer {token}"}).json()["key"]
    return server, key


def measure(direct: Target, vault: Target, worker: int, quick: bool) -> dict:
    results: dict = {"unary": {}}
    scale = 1 if quick else 4
    for concurrency in (1, 16, 64):
        total = {1: 200, 16: 800, 64: 1280}[concurrency] * scale
        unary(direct, concurrency, total // 4)  # warm both paths up
        unary(vault, concurrency, total // 4)
        cpu_before = cpu_seconds(worker)
        results["unary"][concurrency] = {"vault": unary(vault, concurrency, total),
                                         "direct": unary(direct, concurrency, total)}
        if concurrency == 16:
            results["cpu_ms_per_request"] = (cpu_seconds(worker) - cpu_before) * 1000 / total
    results["ttfb"] = {"direct": first_bytes(direct, 64, 2 * scale), "vault": first_bytes(vault, 64, 2 * scale)}
    results["streams"] = hold_streams(vault, 1000, worker)
    return results


def report(results: dict) -> str:
    rows = [("metric", "direct", "vault", "vault/direct", "added")]
    for concurrency, pair in results["unary"].items():
        direct, vault = pair["direct"], pair["vault"]
        rows.append((f"req/s  c={concurrency}", f"{direct['rps']:.0f}", f"{vault['rps']:.0f}",
                     f"{vault['rps'] / direct['rps']:.2f}", ""))
        for stat in ("p50", "p99"):
            rows.append((f"{stat} ms c={concurrency}", f"{direct[stat]:.2f}", f"{vault[stat]:.2f}",
                         f"{vault[stat] / direct[stat]:.2f}", f"{vault[stat] - direct[stat]:+.2f} ms"))
    for stat in ("p50", "p99"):
        direct, vault = results["ttfb"]["direct"][stat], results["ttfb"]["vault"][stat]
        rows.append((f"stream TTFB {stat} ms (64)", f"{direct:.2f}", f"{vault:.2f}", f"{vault / direct:.2f}",
                     f"{vault - direct:+.2f} ms"))
    streams = results["streams"]
    rows += [
        ("Vault CPU ms / request", "", f"{results['cpu_ms_per_request']:.2f}", "", "target <= 2.00"),
        ("open streams, one worker", "", f"{streams['held']} / 1000", "", f"{streams['errors']} errors"),
        ("worker RSS MiB idle -> held", "", f"{streams['rss_idle_mib']:.0f} -> {streams['rss_held_mib']:.0f}",
         "", f"{streams['kib_per_stream']:.0f} KiB/stream"),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows)


def verdicts(results: dict) -> list[str]:
    added = results["unary"][1]["vault"]["p50"] - results["unary"][1]["direct"]["p50"]
    cpu_ms = results["cpu_ms_per_request"]
    checks = [
        ("server CPU per non-streaming request <= 2 ms", cpu_ms <= TARGETS["cpu_ms_per_request"]),
        ("added p50 at concurrency 1 <= 3 ms", added <= TARGETS["added_p50_ms_c1"]),
        ("1000 concurrent open streams on one worker", results["streams"]["held"] >= TARGETS["open_streams"]),
    ]
    return [f"{'PASS' if ok else 'MISS'}  {label}" for label, ok in checks]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    args = parser.parse_args()
    fake, fake_url = start_fake(hold=15.0)
    with tempfile.TemporaryDirectory(prefix="vault-bench-") as workdir:
        server, vault_key = start_vault(Path(workdir), fake_url)
        try:
            worker = worker_of(server._process.pid)
            results = measure(Target("direct", fake_url, UPSTREAM_KEYS[0]), Target("vault", server.base_url, vault_key),
                              worker, args.quick)
        finally:
            server.stop()
            fake.stdin.close()
            fake.wait(timeout=30)
    print(report(results))
    print("\n".join(verdicts(results)))
    out = PROJECT_ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
