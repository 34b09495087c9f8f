"""The admin area. Every route here is for admins only, checked once at the door."""

from flask import Blueprint

from vault.auth.identity import require_user
from vault.errors import Forbidden

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
def require_admin() -> None:
    """Refuse anyone who is not an active admin."""
    if not require_user().is_admin:
        raise Forbidden("Admins only.")


from vault.admin import api, billing_api  # noqa: E402,F401  (routes register themselves on bp)
