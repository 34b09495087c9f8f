"""The admin area. Every route here is for admins only, checked once at the door."""

from flask import Blueprint, request
from flask_login import current_user

from vault.auth.identity import require_user
from vault.errors import Forbidden
from vault.extensions import login_manager

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


from vault.admin import api, billing_api, invites_api, views  # noqa: E402,F401  (routes register themselves on bp)
