"""A user's own area: Vault keys (JSON API) and, later, the dashboard pages."""

from flask import Blueprint

bp = Blueprint("dashboard", __name__)

from vault.dashboard import api, views  # noqa: E402,F401  (routes register themselves on bp)
