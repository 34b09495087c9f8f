"""Probes and metrics: `/healthz` (liveness + database), `/readyz` (database, Redis, a usable
upstream key) and `/metrics` (Prometheus text format)."""

import logging

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from vault import pool
from vault.clock import utcnow
from vault.extensions import db
from vault.runtime import runtime

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


def database_up() -> bool:
    try:
        db.session.execute(text("SELECT 1"))
        return True
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.warning("health check: database unreachable (%s)", type(exc).__name__)
        return False


def redis_up() -> bool | None:
    """True/False when Redis is configured, None when it is not."""
    if not current_app.config["REDIS_URL"]:
        return None
    try:
        return bool(runtime().limiter.ping())
    except Exception as exc:  # any client error means "not ready"
        log.warning("health check: Redis unreachable (%s)", type(exc).__name__)
        return False


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """200 when the process serves and the database answers, else 503."""
    if not database_up():
        return jsonify(status="unavailable", database="down"), 503
    return jsonify(status="ok", database="up"), 200


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready to serve traffic: database and Redis (if configured) answer, and a key is usable."""
    checks = {"database": database_up(), "redis": redis_up(), "upstream_keys": False}
    if checks["database"]:
        counts = pool.count_by_state(pool.list_upstream_keys(db.session), utcnow())
        checks["upstream_keys"] = counts["active"] > 0
    ready = all(value is not False for value in checks.values())
    body = {name: ("skipped" if value is None else "up" if value else "down") for name, value in checks.items()}
    return jsonify(status="ready" if ready else "unavailable", **body), 200 if ready else 503


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus metrics of every worker, plus the pool's key states read from the database."""
    lines = ["# HELP vault_upstream_keys Upstream keys by state.", "# TYPE vault_upstream_keys gauge"]
    try:
        counts = pool.count_by_state(pool.list_upstream_keys(db.session), utcnow())
        lines += [f'vault_upstream_keys{{state="{state}"}} {count}' for state, count in counts.items()]
    except SQLAlchemyError:
        db.session.rollback()
        lines = []
    return runtime().metrics.exposition(lines)
