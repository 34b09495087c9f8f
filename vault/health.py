"""`/healthz`: liveness plus a database round trip, for load balancers and Docker."""

import logging

from flask import Blueprint, Response, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from vault.extensions import db

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """200 when the process serves and the database answers, else 503."""
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.warning("health check: database unreachable (%s)", type(exc).__name__)
        return jsonify(status="unavailable", database="down"), 503
    return jsonify(status="ok", database="up"), 200
