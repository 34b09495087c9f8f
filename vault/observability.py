"""Request ids, structured logs and Prometheus metrics.

Every request gets an id (the caller's `X-Request-Id` if it looks sane, else a new one),
returned as `X-Request-Id`, stamped on log lines and kept on the usage record as
`client_request_id`. It is for tracing only: a caller may send any id, the same one twice,
so the ledger keys each request by a settlement id the server makes. Metrics live in
a registry of the app's own; under gunicorn with `PROMETHEUS_MULTIPROC_DIR` set, every
worker writes its samples there and `/metrics` adds them all up.
"""

import json
import logging
import os
import re
from collections.abc import Iterable

from flask import Flask, Response, g, has_request_context, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from vault.ids import time_ordered_id

SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


def install_request_ids(app: Flask) -> None:
    """Give every request an id and return it in `X-Request-Id`."""

    @app.before_request
    def assign_request_id() -> None:
        offered = request.headers.get("X-Request-Id", "")
        g.request_id = offered if SANE_REQUEST_ID.match(offered) else time_ordered_id()

    @app.after_request
    def return_request_id(response: Response) -> Response:
        response.headers["X-Request-Id"] = g.get("request_id", "")
        return response


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every log record (empty outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "") if has_request_context() else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name,
                 "message": record.getMessage(), "request_id": getattr(record, "request_id", "")}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


LOG_FORMATS = ("json", "text")


def configure_logging_from_env(environ) -> None:
    """Apply `VAULT_LOG_LEVEL` and `VAULT_LOG_FORMAT` (JSON lines by default in production).

    Runs before the app is built, so a bad value stops the start with a clear message.
    """
    production = environ.get("VAULT_ENV", "development") == "production"
    log_format = (environ.get("VAULT_LOG_FORMAT") or ("json" if production else "text")).strip().lower()
    level = (environ.get("VAULT_LOG_LEVEL") or "INFO").strip().upper()
    if log_format not in LOG_FORMATS:
        raise SystemExit(f"VAULT_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    if not isinstance(logging.getLevelName(level), int):
        raise SystemExit(f"VAULT_LOG_LEVEL must be a level such as INFO or WARNING, not {level!r}")
    configure_logging(level, structured=log_format == "json")


def configure_logging(level: str, structured: bool) -> None:
    """Log to stderr, as JSON lines when `structured`, with request ids either way."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if structured else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


class Metrics:
    """The Vault's Prometheus metrics (request outcomes, latency, tokens, upstream attempts)."""

    def __init__(self) -> None:
        folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if folder:
            os.makedirs(folder, exist_ok=True)  # CLI commands build the app before gunicorn makes it
        self.registry = CollectorRegistry()
        self.requests = Counter("vault_requests_total", "Proxied requests by endpoint, priced model and status.",
                                ["endpoint", "model", "status"], registry=self.registry)
        self.latency = Histogram("vault_request_duration_seconds", "Time to the last byte of proxied requests.",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.first_byte = Histogram("vault_first_byte_seconds", "Time to the first byte of proxied answers.",
                                    ["endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.tokens = Counter("vault_tokens_total", "Tokens metered, by priced model and class.",
                              ["model", "kind"], registry=self.registry)
        self.attempts = Counter("vault_upstream_attempts_total", "Upstream attempts by verdict.", ["verdict"],
                                registry=self.registry)
        self.failovers = Counter("vault_failovers_total", "Retries on another upstream key.", registry=self.registry)

    def request_finished(self, endpoint: str, model: str, status: int, seconds: float,
                         first_byte_seconds: float | None, prompt: int, output: int) -> None:
        self.requests.labels(endpoint, model or "none", str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)
        if first_byte_seconds is not None:
            self.first_byte.labels(endpoint).observe(first_byte_seconds)
        if prompt:
            self.tokens.labels(model, "input").inc(prompt)
        if output:
            self.tokens.labels(model, "output").inc(output)

    def exposition(self, extra: Iterable[str] = ()) -> Response:
        """The text format for `/metrics`, summed over every worker in multiprocess mode."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        else:
            registry = self.registry
        body = generate_latest(registry).decode() + "".join(line + "\n" for line in extra)
        return Response(body, mimetype=CONTENT_TYPE_LATEST.split(";")[0],
                        headers={"Content-Type": CONTENT_TYPE_LATEST})
