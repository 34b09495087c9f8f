"""The admin area. Every route here is for admins only, checked once at the door."""

from flask import Blueprint, request
from flask_login import current_user

from vault import add_lazy_routes
from vault.auth.identity import require_user
from vault.errors import Forbidden
from vault.extensions import login_manager
from vault.forms import claim_form_token

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
def require_admin():
    """Refuse anyone who is not an active admin: JSON errors on the API, login redirects on pages."""
    if request.path.startswith("/admin/api/"):
        if not require_user().is_admin:
            raise Forbidden("Admins only.")
        return None
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not current_user.is_admin:
        raise Forbidden("Admins only.")
    return None


bp.before_request(claim_form_token)  # after the door: a sent form's token is claimed once (vault.idempotency)

from vault.admin import (  # noqa: E402,F401  (the pages register themselves on bp)
    alerts_views,
    audit_views,
    codes_views,
    pool_views,
    routing_views,
    views,
)

# The JSON API loads on its first call (pydantic is its cost; see add_lazy_routes).
add_lazy_routes(bp, "vault.admin.api", [
    ("GET", "/api/users", "list_users"),
    ("PATCH", "/api/users/<int:user_id>", "update_user"),
    ("GET", "/api/users/<int:user_id>/resources", "list_user_resources"),
    ("PATCH", "/api/api-keys/<int:key_id>", "update_api_key"),
    ("GET", "/api/upstream-keys", "list_upstream_keys"),
    ("POST", "/api/upstream-keys", "add_upstream_keys"),
    ("PATCH", "/api/upstream-keys/<int:key_id>", "update_upstream_key"),
    ("DELETE", "/api/upstream-keys/<int:key_id>", "delete_upstream_key"),
    ("POST", "/api/upstream-keys/bulk", "bulk_upstream_keys"),
    ("POST", "/api/upstream-keys/check", "check_upstream_keys"),
    ("GET", "/api/jobs/<job_id>", "show_job"),
])
add_lazy_routes(bp, "vault.admin.billing_api", [
    ("GET", "/api/users/<int:user_id>", "show_user"),
    ("GET", "/api/prices", "list_prices"),
    ("GET", "/api/prices/<model>", "show_price"),
    ("PUT", "/api/prices/<model>", "put_price"),
    ("DELETE", "/api/prices/<model>", "delete_price"),
    ("GET", "/api/usage", "list_usage"),
    ("GET", "/api/usage/summary", "usage_summary"),
])
add_lazy_routes(bp, "vault.admin.routing_api", [
    ("GET", "/api/models", "list_models"),
    ("PUT", "/api/models/<model>", "put_model"),
    ("GET", "/api/model-aliases", "list_aliases"),
    ("PUT", "/api/model-aliases/<alias>", "put_alias"),
    ("DELETE", "/api/model-aliases/<alias>", "delete_alias"),
])
add_lazy_routes(bp, "vault.admin.audit_api", [
    ("GET", "/api/audit", "list_audit"),
])
add_lazy_routes(bp, "vault.admin.alerts_api", [
    ("GET", "/api/alerts", "show_alerts"),
    ("PUT", "/api/alerts/webhook", "put_webhook"),
    ("PUT", "/api/alerts/settings", "put_settings"),
])
add_lazy_routes(bp, "vault.admin.invites_api", [
    ("GET", "/api/invites", "list_invites"),
    ("POST", "/api/invites", "create_invite"),
    ("DELETE", "/api/invites/<int:invite_id>", "revoke_invite"),
])
add_lazy_routes(bp, "vault.admin.codes_api", [
    ("GET", "/api/redemption-codes", "list_codes"),
    ("POST", "/api/redemption-codes", "mint_codes"),
])
