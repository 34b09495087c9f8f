"""Who is calling: a JWT bearer token or a logged-in browser session.

Browser sessions carry the user's session version in their id (see `User.get_id`), and
tokens carry it as a claim, so bumping the version ends both.
"""

from flask import current_app, request
from flask_login import current_user

from vault.errors import Unauthorized
from vault.extensions import csrf, db, login_manager
from vault.models import User
from vault.security import TokenError, read_access_token

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


@login_manager.user_loader
def load_session_user(session_id: str) -> User | None:
    """Resolve a Flask-Login session id `"<user id>:<session version>"`."""
    user_id, _, version = session_id.partition(":")
    if not user_id.isdigit() or not version.isdigit():
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not user.is_active or user.session_version != int(version):
        return None
    return user


def user_from_token(token: str) -> User:
    """The active user a bearer token belongs to; `Unauthorized` if it is not valid now."""
    try:
        user_id, version = read_access_token(token, current_app.config["SECRET_KEY"])
    except TokenError as exc:
        raise Unauthorized(f"Invalid access token: {exc}.") from None
    user = db.session.get(User, user_id)
    if user is None or not user.is_active or user.session_version != version:
        raise Unauthorized("Invalid access token: it has been revoked.")
    return user


def bearer_token() -> str | None:
    """The token in `Authorization: Bearer …`, if any."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def require_user() -> User:
    """The calling user of a JSON API request.

    A bearer token wins over a session cookie. Cookie-authenticated requests that change
    state must carry a CSRF token (header `X-CSRFToken`), as forms do.
    """
    token = bearer_token()
    if token is not None:
        return user_from_token(token)
    if current_user.is_authenticated:
        if request.method in UNSAFE_METHODS:
            csrf.protect()
        return current_user._get_current_object()
    raise Unauthorized("Authentication required: send 'Authorization: Bearer <token>'.")
