"""Accounts: registration, tokens and the caller's own profile."""

from flask import Blueprint

bp = Blueprint("auth", __name__)

from vault.auth import api, views  # noqa: E402,F401  (routes register themselves on bp)
