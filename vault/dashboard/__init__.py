"""A user's own area: Vault keys (JSON API) and, later, the dashboard pages."""

from flask import Blueprint

from vault import add_lazy_routes
from vault.forms import claim_form_token

bp = Blueprint("dashboard", __name__)
bp.before_request(claim_form_token)  # a sent form's token is claimed once (vault.idempotency)

from vault.dashboard import views  # noqa: E402,F401  (the pages register themselves on bp)

# The JSON API loads on its first call (pydantic is its cost; see add_lazy_routes).
add_lazy_routes(bp, "vault.dashboard.api", [
    ("POST", "/api-keys/", "api_create_key"),
    ("GET", "/api-keys/", "api_list_keys"),
    ("PATCH", "/api-keys/<int:key_id>", "api_update_key"),
    ("DELETE", "/api-keys/<int:key_id>", "api_revoke_key"),
    ("POST", "/api/redeem", "api_redeem"),
])
