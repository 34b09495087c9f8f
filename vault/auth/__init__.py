"""Accounts: registration, tokens and the caller's own profile."""

from flask import Blueprint

from vault import add_lazy_routes

bp = Blueprint("auth", __name__)

from vault.auth import views  # noqa: E402,F401  (the pages register themselves on bp)

# The JSON API loads on its first call (pydantic is its cost; see add_lazy_routes).
add_lazy_routes(bp, "vault.auth.api", [
    ("POST", "/auth/users/", "api_register"),
    ("POST", "/auth/token", "issue_token"),
    ("GET", "/auth/users/me", "me"),
    ("GET", "/auth/csrf-token", "csrf_token"),
    ("POST", "/auth/logout", "logout_everywhere"),
    ("POST", "/auth/users/me/password", "api_change_password"),
])
