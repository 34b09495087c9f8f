"""The user's dashboard: balance, keys, usage and a quick start."""

from datetime import UTC, datetime, timedelta

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from vault import accounts
from vault.billing import queries
from vault.charts import daily_bars
from vault.clock import utcnow
from vault.dashboard import bp
from vault.dashboard.forms import CreateKeyForm
from vault.errors import BadRequest
from vault.extensions import db
from vault.forms import ActionForm
from vault.resources import summary
from vault.templating import number, usd

CHART_DAYS = 14


def public_base_url() -> str:
    """The URL clients use to reach this server (for snippets)."""
    return (current_app.config["VAULT_PUBLIC_URL"] or request.host_url).rstrip("/")


def dashboard_context(user, form: CreateKeyForm, new_key=None) -> dict:
    today = datetime.now(UTC).date()
    since = datetime.combine(today - timedelta(days=CHART_DAYS - 1), datetime.min.time(), UTC)
    daily = queries.by_day_and_model(db.session, queries.Filters(user_id=user.id, since=since))
    recent, _ = queries.page(db.session, queries.Filters(user_id=user.id), 1, 15)
    keys = accounts.list_api_keys(db.session, user)
    return {
        "user": user, "form": form, "action_form": ActionForm(), "new_key": new_key, "keys": keys,
        "key_names": {key.id: key.name or key.prefix for key in keys}, "recent": recent,
        "revoke_notes": summary.revoke_notes(db.session, user.id, keys, utcnow()),
        "requests_chart": daily_bars(daily, today, CHART_DAYS, "requests", lambda v: f"{number(v)} requests"),
        "tokens_chart": daily_bars(daily, today, CHART_DAYS, "total_tokens", lambda v: f"{number(v)} tokens"),
        "spend_chart": daily_bars([{"day": r["day"], "cost_nano": round(r["cost"] * 10**9)} for r in daily], today,
                                  CHART_DAYS, "cost_nano", usd),
        "base_url": public_base_url(),
    }


@bp.get("/dashboard")
@login_required
def home() -> str:
    user = current_user._get_current_object()
    return render_template("dashboard/home.html", **dashboard_context(user, CreateKeyForm()))


@bp.post("/dashboard/keys")
@login_required
def create_key() -> str | tuple[str, int]:
    """Mint a key and show it this once, on this response only (it is never stored)."""
    user = current_user._get_current_object()
    form = CreateKeyForm()
    if not form.validate_on_submit():
        return render_template("dashboard/home.html", **dashboard_context(user, form)), 400
    new_key = accounts.create_api_key(db.session, user, (form.name.data or "").strip())
    db.session.commit()
    response = render_template("dashboard/home.html", **dashboard_context(user, CreateKeyForm(formdata=None),
                                                                         new_key=new_key))
    return response, 201


@bp.post("/dashboard/keys/<int:key_id>/revoke")
@login_required
def revoke_key(key_id: int):
    form = ActionForm()
    if not form.validate_on_submit():
        raise BadRequest("The form expired; reload the page and try again.")
    record = accounts.revoke_api_key(db.session, current_user._get_current_object(), key_id)
    db.session.commit()
    flash(f"Key {record.name or record.prefix + '…'} was revoked; it no longer works.", "success")
    return redirect(url_for("dashboard.home"))
