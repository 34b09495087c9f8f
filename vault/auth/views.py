"""Account pages: register, log in, log out, change password."""

from urllib.parse import urlsplit

from flask import Response, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from vault import accounts
from vault.auth import bp
from vault.auth.forms import ChangePasswordForm, LoginForm, RegisterForm
from vault.clock import utcnow
from vault.errors import Conflict, Forbidden, RateLimited, Unauthorized
from vault.extensions import db
from vault.ratelimit import enforce_signup_limit
from vault.runtime import runtime


def safe_next(target: str | None) -> str | None:
    """`target` if it is a path on this site, else None (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


@bp.get("/")
def home() -> Response:
    """The dashboard for the logged in, the login page for everyone else."""
    return redirect(url_for("dashboard.home" if current_user.is_authenticated else "auth.login"))


@bp.route("/register", methods=["GET", "POST"])
def register() -> Response | tuple[str, int, dict[str, str]]:
    """Sign up as `VAULT_REGISTRATION` allows; `?invite=CODE` fills in the invite code."""
    config = current_app.config
    if config["VAULT_REGISTRATION"] == "closed":
        return render_template("auth/register.html", form=None), 403, {}
    form = RegisterForm(invite_code=request.args.get("invite", "")[:200])
    if not form.validate_on_submit():
        return render_template("auth/register.html", form=form), 400 if form.is_submitted() else 200, {}
    try:
        enforce_signup_limit(runtime().limiter, request.remote_addr or "", config["VAULT_SIGNUP_PER_HOUR"])
        user = accounts.sign_up(db.session, form.email.data, form.password.data, runtime().passwords,
                                config["VAULT_DEFAULT_BALANCE"], config["VAULT_REGISTRATION"], form.invite_code.data,
                                utcnow())
    except RateLimited as exc:
        flash(exc.message, "error")
        return render_template("auth/register.html", form=form), exc.status, {"Retry-After": str(exc.retry_after)}
    except (Conflict, Forbidden) as exc:  # a taken email, or an invite that cannot be used
        (form.invite_code if "invite_code" in exc.fields else form.email).errors.append(exc.message)
        return render_template("auth/register.html", form=form), exc.status, {}
    db.session.commit()
    login_user(user)
    flash("Welcome to Gemini-Vault! Create your first key below.", "success")
    return redirect(url_for("dashboard.home"))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int]:
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        vault = runtime()
        try:
            user = accounts.authenticate_throttled(db.session, form.email.data, form.password.data, vault.passwords,
                                                   vault.login_throttle, request.remote_addr or "")
        except (Unauthorized, Forbidden, RateLimited) as exc:
            flash(exc.message, "error")
            status = exc.status
        else:
            db.session.commit()
            login_user(user, remember=form.remember.data)
            return redirect(safe_next(request.args.get("next")) or url_for("dashboard.home"))
    elif form.is_submitted():
        status = 400
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
@login_required
def logout() -> Response:
    """Log out everywhere: every session and token of this account ends."""
    accounts.end_all_sessions(db.session, current_user._get_current_object())
    db.session.commit()
    logout_user()
    flash("You are logged out on every device.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password() -> Response | str | tuple[str, int]:
    form = ChangePasswordForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        try:
            accounts.change_password(db.session, user, form.current_password.data, form.new_password.data,
                                     runtime().passwords)
        except Unauthorized as exc:
            form.current_password.errors.append(exc.message)
        else:
            db.session.commit()
            login_user(user)  # this browser stays in; every other session and token has ended
            flash("Password changed. Other sessions and tokens were signed out.", "success")
            return redirect(url_for("dashboard.home"))
    status = 400 if form.is_submitted() else 200
    return render_template("auth/password.html", form=form), status
