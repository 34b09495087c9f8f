"""JSON API of accounts: `/auth/users/`, `/auth/token`, `/auth/users/me`, logout and password.

Its routes are listed in `vault/auth/__init__.py`; this module loads on the first call to one.
"""

from typing import Annotated

from flask import Response, current_app, jsonify, request
from flask_wtf.csrf import generate_csrf
from pydantic import Field

from vault import accounts
from vault.auth.identity import require_user
from vault.clock import utcnow
from vault.errors import BadRequest
from vault.extensions import db
from vault.jsonapi import Body, NewAccountBody, Password, parse_body, read_body, read_json, user_json
from vault.ratelimit import enforce_signup_limit
from vault.runtime import runtime
from vault.security import issue_access_token

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class RegisterBody(NewAccountBody):
    """Registration: email and password, and the invite code when sign-up is by invitation."""

    invite_code: Annotated[str, Field(max_length=200)] | None = None


class CredentialsBody(Body):
    email: str
    password: str


class PasswordChangeBody(Body):
    current_password: str
    new_password: Password


def api_register() -> tuple[Response, int]:
    """Create an account from `{email, password, invite_code?}`; any other field is ignored."""
    config = current_app.config
    accounts.refuse_closed_registration(config["VAULT_REGISTRATION"])
    body = read_body(RegisterBody)
    enforce_signup_limit(runtime().limiter, request.remote_addr or "", config["VAULT_SIGNUP_PER_HOUR"])
    user = accounts.sign_up(db.session, body.email, body.password, runtime().passwords,
                            config["VAULT_DEFAULT_BALANCE"], config["VAULT_REGISTRATION"], body.invite_code, utcnow())
    db.session.commit()
    return jsonify(user_json(user)), 201


def issue_token() -> Response:
    """Exchange credentials (OAuth2 password form or JSON) for a bearer token."""
    email, password = read_credentials()
    vault = runtime()
    user = accounts.authenticate_throttled(db.session, email, password, vault.passwords, vault.login_throttle,
                                           request.remote_addr or "")
    db.session.commit()
    ttl = current_app.config["VAULT_TOKEN_TTL_SECONDS"]
    token = issue_access_token(user.id, user.session_version, current_app.config["SECRET_KEY"], ttl)
    response = jsonify(access_token=token, token_type="bearer", expires_in=ttl)  # noqa: S106
    response.headers["Cache-Control"] = "no-store"
    return response


def read_credentials() -> tuple[str, str]:
    """`(email, password)` from a form (`username`/`password`) or a JSON body."""
    if request.mimetype in FORM_TYPES:
        grant_type = request.form.get("grant_type", "password")
        if grant_type != "password":
            raise BadRequest("Only grant_type=password is supported.")
        body = parse_body(CredentialsBody, {
            "email": request.form.get("username"), "password": request.form.get("password"),
        })
    else:
        body = parse_body(CredentialsBody, read_json())
    return body.email, body.password


def me() -> Response:
    """The calling user, with balance and usage totals."""
    return jsonify(user_json(require_user()))


def csrf_token() -> Response:
    """A CSRF token for scripts that call the JSON API with the browser session."""
    return jsonify(csrf_token=generate_csrf())


def logout_everywhere() -> tuple[str, int]:
    """End every session and token of the caller, this one included."""
    user = require_user()
    accounts.end_all_sessions(db.session, user)
    db.session.commit()
    return "", 204


def api_change_password() -> tuple[str, int]:
    """Change the caller's password; every existing session and token ends."""
    user = require_user()
    body = read_body(PasswordChangeBody)
    accounts.change_password(db.session, user, body.current_password, body.new_password, runtime().passwords)
    db.session.commit()
    return "", 204
