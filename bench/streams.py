"""Streaming load client: many concurrent SSE streams over plain asyncio sockets (no extra dependency).

Run by the harness as its own process on the load CPUs; prints one `STREAMJSON {…}` line.

Load mode (`-c N --duration S`): N workers, each opening one stream after another on its own
keep-alive connection until S seconds have passed (no new stream after that; the run is
capped at S + --grace). Per stream: time to the first body byte (TTFB) and total time, and
whether it arrived whole: the fake numbers its chunk texts tok0…tok{n-1}, so exactly that
sequence must arrive (plus `[DONE]` on OpenAI-shaped streams).

Hold mode (`--hold N`): opens N streams (in batches), counts those whose first chunk arrived,
keeps them all open for --hold-seconds (the harness samples the gateway's memory meanwhile),
then counts how many are still open at once and closes them.

    python -m bench.streams --url URL --body JSON [--header 'Name: value']… -c 64 --duration 8
    python -m bench.streams --url URL --body JSON --hold 5000 --hold-seconds 5
"""

import argparse
import asyncio
import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

TOKEN = re.compile(rb"tok(\d+)")


@dataclass(frozen=True)
class Call:
    """The stream request: where, the exact bytes to send, and what a whole answer holds."""

    host: str
    port: int
    request: bytes
    expect_chunks: int
    openai: bool

    @classmethod
    def build(cls, url: str, headers: list[str], body: str, expect_chunks: int, openai: bool) -> "Call":
        parts = urlsplit(url)
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit("bench.streams: loopback targets only")
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        payload = body.encode()
        lines = [f"POST {target} HTTP/1.1", f"Host: {parts.netloc}", "Content-Type: application/json",
                 f"Content-Length: {len(payload)}", *headers]
        return cls(parts.hostname, parts.port or 80, ("\r\n".join(lines) + "\r\n\r\n").encode() + payload,
                   expect_chunks, openai)


class StreamFailed(Exception):
    """A stream that did not arrive whole; the message is its outcome (e.g. `status_401`)."""


@dataclass
class Connection:
    """A worker's keep-alive connection, reopened after errors or `Connection: close`."""

    call: Call
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.call.host, self.call.port, limit=1 << 20)
        return self.reader, self.writer

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    """Status code and lower-cased headers of a response."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip().lower()
    return int(head[0].split(" ", 2)[1]), headers


async def read_body(reader: asyncio.StreamReader, headers: dict[str, str], on_piece) -> None:
    """Feed every body piece to `on_piece` as it arrives (chunked, sized, or up to EOF)."""
    if "chunked" in headers.get("transfer-encoding", ""):
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            on_piece((await reader.readexactly(size + 2))[:-2])
        await reader.readuntil(b"\r\n")
    elif "content-length" in headers:
        on_piece(await reader.readexactly(int(headers["content-length"])))
    else:
        while piece := await reader.read(65536):
            on_piece(piece)


@dataclass
class Stream:
    """One stream's timings and body, filled while it runs."""

    started: float = field(default_factory=time.perf_counter)
    first_byte: float | None = None
    body: bytearray = field(default_factory=bytearray)

    def take(self, piece: bytes) -> None:
        if self.first_byte is None:
            self.first_byte = time.perf_counter()
        self.body += piece


async def run_stream(connection: Connection, stream: Stream) -> None:
    """Send the call and read the whole answer into `stream`; raises StreamFailed if it is not whole."""
    call = connection.call
    reader, writer = await connection.open()
    writer.write(call.request)
    status, headers = await read_head(reader)
    await read_body(reader, headers, stream.take)
    if headers.get("connection") == "close":
        connection.close()
    if status != 200:
        raise StreamFailed(f"status_{status}")
    tokens = [int(number) for number in TOKEN.findall(bytes(stream.body))]
    if tokens != list(range(call.expect_chunks)):
        raise StreamFailed(f"incomplete_{len(tokens)}_of_{call.expect_chunks}")
    if call.openai and b"[DONE]" not in stream.body:
        raise StreamFailed("no_done")


async def timed_stream(connection: Connection, timeout: float) -> tuple[str, Stream]:
    """(outcome, stream) of one stream: `ok`, or why not; the connection is dropped after a failure."""
    stream = Stream()
    try:
        await asyncio.wait_for(run_stream(connection, stream), timeout)
        return "ok", stream
    except StreamFailed as exc:
        outcome = str(exc)
    except TimeoutError:
        outcome = "timeout"
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
        outcome = f"error_{type(exc).__name__}"
    connection.close()
    return outcome, stream


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))] * 1000, 2)


async def load(call: Call, concurrency: int, duration: float, grace: float, timeout: float) -> dict:
    """Keep `concurrency` streams open for `duration` seconds; TTFB and total-time percentiles."""
    ttfbs, totals, outcomes = [], [], Counter()
    deadline = time.perf_counter() + duration

    async def worker() -> None:
        connection = Connection(call)
        while time.perf_counter() < deadline:
            outcome, stream = await timed_stream(connection, timeout)
            outcomes[outcome] += 1
            if outcome == "ok":
                ttfbs.append(stream.first_byte - stream.started)
                totals.append(time.perf_counter() - stream.started)
            else:
                await asyncio.sleep(0.05)
        connection.close()

    started = time.perf_counter()
    tasks = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
    _, pending = await asyncio.wait(tasks, timeout=duration + grace)
    for task in pending:
        task.cancel()
    outcomes["cancelled_at_cap"] += len(pending)
    ok = outcomes.pop("ok", 0)
    return {"concurrency": concurrency, "seconds": round(time.perf_counter() - started, 2), "streams_ok": ok,
            "streams_failed": sum(outcomes.values()), "failures": {k: v for k, v in outcomes.items() if v},
            "ttfb_p50_ms": percentile(ttfbs, 0.5), "ttfb_p99_ms": percentile(ttfbs, 0.99),
            "total_p50_ms": percentile(totals, 0.5), "total_p99_ms": percentile(totals, 0.99)}


async def hold(call: Call, count: int, hold_seconds: float, open_timeout: float, batch: int = 250) -> dict:
    """Open `count` streams that the upstream keeps open; how many were held at the same time."""
    streams = [Stream() for _ in range(count)]
    connections = [Connection(call) for _ in range(count)]
    tasks = []
    for start in range(0, count, batch):
        tasks += [asyncio.ensure_future(run_stream(connections[i], streams[i]))
                  for i in range(start, min(count, start + batch))]
        await asyncio.sleep(0.05)  # spread the SYNs over the listen backlog
    deadline = time.perf_counter() + open_timeout
    while time.perf_counter() < deadline and not all(
            stream.first_byte or task.done() for stream, task in zip(streams, tasks, strict=True)):
        await asyncio.sleep(0.1)
    opened = sum(stream.first_byte is not None for stream in streams)
    await asyncio.sleep(hold_seconds)
    held = sum(stream.first_byte is not None and not task.done() for stream, task in zip(streams, tasks, strict=True))
    failures = Counter(type(task.exception()).__name__ for task in tasks if task.done() and task.exception())
    for task in tasks:
        task.cancel()
    for connection in connections:
        connection.close()
    ttfbs = [stream.first_byte - stream.started for stream in streams if stream.first_byte]
    return {"requested": count, "opened": opened, "held": held, "failures": dict(failures),
            "ttfb_p50_ms": percentile(ttfbs, 0.5), "ttfb_p99_ms": percentile(ttfbs, 0.99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", required=True)
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("-c", "--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--grace", type=float, default=30.0)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds one stream may take")
    parser.add_argument("--expect-chunks", type=int, default=20)
    parser.add_argument("--openai", action="store_true", help="an OpenAI-shaped stream (ends with [DONE])")
    parser.add_argument("--hold", type=int, default=0, help="hold mode: open this many streams at once")
    parser.add_argument("--hold-seconds", type=float, default=5.0)
    parser.add_argument("--open-timeout", type=float, default=60.0)
    args = parser.parse_args()
    call = Call.build(args.url, args.header, args.body, args.expect_chunks, args.openai)
    if args.hold:
        result = asyncio.run(hold(call, args.hold, args.hold_seconds, args.open_timeout))
    else:
        result = asyncio.run(load(call, args.concurrency, args.duration, args.grace, args.timeout))
    print("STREAMJSON " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
