"""gunicorn settings: gevent workers, so one worker holds many concurrent streams."""

import os
import re

from dotenv import find_dotenv, load_dotenv
from gunicorn.glogging import Logger

# Read .env before any setting below, so `make run` and production honour the same file
# (VAULT_BIND, WEB_CONCURRENCY, PROMETHEUS_MULTIPROC_DIR…); real environment variables win.
load_dotenv(find_dotenv(usecwd=True))  # the working directory's, however Python was started

bind = os.environ.get("VAULT_BIND", "0.0.0.0:8000")
worker_class = "gevent"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_connections = int(os.environ.get("VAULT_WORKER_CONNECTIONS", "1000"))
# A gevent worker heartbeats while streams are open, so this only catches a stuck worker.
timeout = int(os.environ.get("VAULT_WORKER_TIMEOUT", "120"))
graceful_timeout = int(os.environ.get("VAULT_GRACEFUL_TIMEOUT", "30"))
# Seconds an idle client connection stays open; a graceful stop waits for idle ones to time out.
keepalive = int(os.environ.get("VAULT_KEEPALIVE_SECONDS", "5"))
accesslog = "-"
errorlog = "-"
# %(U)s is the path without the query string (see RedactingLogger): a Vault key never reaches the log.
DEFAULT_ACCESS_FORMAT = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s" request_id=%({x-request-id}o)s'
access_log_format = DEFAULT_ACCESS_FORMAT
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def on_starting(server) -> None:
    """Start every run with an empty Prometheus multiprocess folder."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        os.makedirs(folder, exist_ok=True)
        for name in os.listdir(folder):
            os.unlink(os.path.join(folder, name))


def child_exit(server, worker) -> None:
    """Let Prometheus forget the live gauges of a worker that is gone."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


SECRET_SHAPES = re.compile(r"gv-[A-Za-z0-9_\-]+|AIza[A-Za-z0-9_\-]+")
ENCODED_QUERY = re.compile(r"%3f.*", re.IGNORECASE)


def escaped(value: str) -> str:
    """A value quoted in the access line, its quotes escaped as gunicorn's own atoms do."""
    return value.replace('"', '\\"')


class RedactingLogger(Logger):
    """Access lines show the path as sent (still encoded), never what could be a credential.

    gunicorn's own `%(U)s` is the *decoded* path, so `…:generateContent%3Fkey%3Dgv-…` (refused
    by the Vault) would be logged as `…?key=gv-…`. Here the raw path is cut at an encoded `?`,
    and anything shaped like a Vault or Google key is masked.

    With the default format the line is written directly: gunicorn's generic path builds a
    dictionary of every atom and header per request, a cost every proxied call would pay.
    """

    def access(self, resp, req, environ, request_time):
        if self.cfg.access_log_format != DEFAULT_ACCESS_FORMAT:
            return super().access(resp, req, environ, request_time)
        if not self.access_log_enabled:
            return
        request_id = escaped(next((value for name, value in resp.headers if name.lower() == "x-request-id"), "-"))
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        sent = getattr(resp, "sent", None)
        elapsed_ms = request_time.seconds * 1000 + request_time.microseconds // 1000
        agent = escaped(environ.get("HTTP_USER_AGENT", "-"))
        line = (f'{environ.get("REMOTE_ADDR", "-")} "{environ.get("REQUEST_METHOD")} {self.redacted_path(environ)} '
                f'{environ.get("SERVER_PROTOCOL")}" {status} {"-" if sent is None else sent} {elapsed_ms}ms '
                f'"{agent}" request_id={request_id}')
        try:
            self.access_log.info(line)
        except Exception:
            self.error("access log line not written")

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["U"] = self.redacted_path(environ, atoms.get("U", ""))
        return atoms

    @staticmethod
    def redacted_path(environ, fallback: str = "") -> str:
        raw = (environ.get("RAW_URI") or environ.get("PATH_INFO") or fallback).partition("?")[0]
        return SECRET_SHAPES.sub("[redacted]", ENCODED_QUERY.sub("%3F…", raw))


logger_class = RedactingLogger
