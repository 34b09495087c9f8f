"""Probes and metrics: `/healthz` (liveness + database), `/readyz` (database, and a key that can
serve some model; Redis reported) and `/metrics` (Prometheus text format)."""

import hmac
import logging
from datetime import datetime

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from vault import pool
from vault.clock import utcnow
from vault.errors import Unauthorized
from vault.extensions import db
from vault.models import UpstreamKey, UpstreamKeyState
from vault.pool.rotator import ALL_MODELS
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
    """True/False when Redis is configured, None when it is not (no network while its breaker is open)."""
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
    """Ready to serve traffic: the database answers and some key can serve some model.

    The body says, per model with a cooldown running and for `*` (every other model),
    whether a key can serve it now (`available`), every usable key cools or rests for it
    (`cooling`), or no key is usable at all (`unavailable`); and how many keys are in each
    state. Redis is reported, not required: without it the Vault serves from local state.
    """
    database, redis = database_up(), redis_up()
    models: dict[str, str] = {}
    counts: dict[str, int] = {}
    if database:
        keys, now = pool.list_upstream_keys(db.session), utcnow()
        models, counts = model_availability(keys, now), pool.count_by_state(keys, now)
    ready = database and "available" in models.values()
    body = {"status": "ready" if ready else "unavailable", "database": "up" if database else "down",
            "redis": "skipped" if redis is None else "up" if redis else "down",
            "upstream_keys": "up" if ready else "down", "models": models, "keys": counts}
    return jsonify(body), 200 if ready else 503


def model_availability(keys: list[UpstreamKey], now: datetime) -> dict[str, str]:
    """`available`, `cooling` or `unavailable` for `*` and for each model some key cools for (see `readyz`)."""
    usable = [key for key in keys if key.state is UpstreamKeyState.ACTIVE or (
        key.state is UpstreamKeyState.DISABLED and key.disabled_until is not None and key.disabled_until <= now)]
    resting = [{cooldown.model for cooldown in key.cooldowns if cooldown.until > now} for key in usable]
    named = sorted({model for models in resting for model in models} - {ALL_MODELS})

    def availability(model: str) -> str:
        if not usable:
            return "unavailable"
        free = any(ALL_MODELS not in models and model not in models for models in resting)
        return "available" if free else "cooling"

    return {model: availability(model) for model in [ALL_MODELS, *named]}


def require_metrics_token(token: str | None) -> None:
    """401 unless no token is configured or the request's Bearer token matches it."""
    if not token:
        return
    scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(offered.strip().encode(), token.encode()):
        raise Unauthorized("Send the metrics token as 'Authorization: Bearer <token>'.")


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus metrics of every worker, plus the pool's key states read from the database.

    With `VAULT_METRICS_TOKEN` set, only a scraper presenting it as a Bearer token gets them.
    """
    require_metrics_token(current_app.config["VAULT_METRICS_TOKEN"])
    lines = ["# HELP vault_upstream_keys Upstream keys by state.", "# TYPE vault_upstream_keys gauge"]
    try:
        counts = pool.count_by_state(pool.list_upstream_keys(db.session), utcnow())
        lines += [f'vault_upstream_keys{{state="{state}"}} {count}' for state, count in counts.items()]
    except SQLAlchemyError:
        db.session.rollback()
        lines = []
    return runtime().metrics.exposition(lines)
