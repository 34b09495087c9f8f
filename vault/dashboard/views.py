"""The user's dashboard: balance, keys with their policy and standing, usage and a quick start."""

from datetime import UTC, datetime, timedelta

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from vault import accounts, charts
from vault.billing import queries, redemption
from vault.billing.money import usd_to_nano
from vault.clock import utcnow
from vault.dashboard import bp
from vault.dashboard.forms import CreateKeyForm, RedeemForm
from vault.errors import BadRequest, Conflict, Gone, NotFound, RateLimited
from vault.extensions import db
from vault.forms import ActionForm, KeyPolicyForm, save_key_policy, stored_to_form
from vault.models import ApiKey
from vault.policies.rules import key_settings
from vault.policies.standing import key_standing
from vault.ratelimit import enforce_redeem_limit
from vault.resources import summary
from vault.runtime import runtime
from vault.templating import number, usd

CHART_DAYS = 14
PERIOD_WORDS = {"day": "today", "week": "this week", "month": "this month", None: "in all"}


def standing_lines(standing: dict, lifetime_spend: int) -> list[dict]:
    """A key's standing as meter lines: what is used against its limit (None: no limit). Without a
    cap, the spend shown is the key's whole spend."""
    cap = None if standing["spend_cap"] is None else usd_to_nano(str(standing["spend_cap"]))
    spent = lifetime_spend if cap is None else usd_to_nano(str(standing["spend_this_period"]))
    rows = [
        ("spend", f"Spend {PERIOD_WORDS[standing['spend_cap_period']]}", spent, cap, usd),
        ("rpm", "Requests this minute", standing["requests_this_minute"], standing["rate_limit_rpm"], number),
        ("tpm", "Tokens this minute", standing["tokens_this_minute"], standing["rate_limit_tpm"], number),
        ("concurrency", "In flight", standing["in_flight"], standing["max_concurrency"], number),
    ]
    return [{"name": name, "label": label, "used": used, "limit": limit,
             "text": f"{shown(used)} of {shown(limit)}" if limit is not None else f"{shown(used)} · no limit"}
            for name, label, used, limit, shown in rows]


def key_cards(keys: list[ApiKey], posted: tuple[int, KeyPolicyForm] | None = None) -> dict[int, dict]:
    """Each active key's standing and policy form; `posted` is a (key id, form) sent back with errors."""
    vault, now = runtime(), utcnow()
    zone = current_app.config["VAULT_SPEND_CAP_TIMEZONE"]
    cards = {}
    for key in keys:
        if key.revoked_at is None:
            standing = key_standing(db.session, vault.limiter, key, zone, vault.default_rpm, now)
            form = KeyPolicyForm(formdata=None, data=stored_to_form(key_settings(key)))
            cards[key.id] = {"standing": standing, "lines": standing_lines(standing, key.spend_nano), "form": form}
    if posted is not None and posted[0] in cards:
        cards[posted[0]]["form"] = posted[1]
    return cards


def public_base_url() -> str:
    """The URL clients use to reach this server (for snippets)."""
    return (current_app.config["VAULT_PUBLIC_URL"] or request.host_url).rstrip("/")


def dashboard_context(user, form: CreateKeyForm, new_key=None, posted=None,
                      redeem_form: RedeemForm | None = None) -> dict:
    today = datetime.now(UTC).date()
    since = datetime.combine(today - timedelta(days=CHART_DAYS - 1), datetime.min.time(), UTC)
    daily = charts.cost_rows(queries.by_day_and_model(db.session, queries.Filters(user_id=user.id, since=since)))
    recent, _ = queries.page(db.session, queries.Filters(user_id=user.id), 1, 15)
    keys = accounts.list_api_keys(db.session, user)
    return {
        "user": user, "form": form, "redeem_form": redeem_form or RedeemForm(formdata=None),
        "action_form": ActionForm(), "new_key": new_key, "keys": keys,
        "key_names": {key.id: key.name or key.prefix for key in keys}, "recent": recent,
        "cards": key_cards(keys, posted), "posted_key": posted[0] if posted else None,
        "default_rpm": runtime().default_rpm,
        "revoke_notes": summary.revoke_notes(db.session, user.id, keys, utcnow()),
        "requests_chart": charts.daily_chart(daily, today, CHART_DAYS, "requests", charts.REQUESTS,
                                             "Requests per day"),
        "tokens_chart": charts.daily_chart(daily, today, CHART_DAYS, "total_tokens", charts.TOKENS, "Tokens per day"),
        "spend_chart": charts.daily_chart(daily, today, CHART_DAYS, "cost_nano", charts.SPEND, "Spend per day"),
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


@bp.post("/dashboard/keys/<int:key_id>/policy")
@login_required
def key_policy(key_id: int):
    """Change one of the user's keys' policy, within what their account allows."""
    user = current_user._get_current_object()
    key = accounts.find_changeable_key(db.session, user.id, key_id)
    form = KeyPolicyForm()
    if form.validate_on_submit() and save_key_policy(form, key, runtime().default_rpm):
        db.session.commit()
        flash(f"Policy of key {key.name or key.prefix + '…'} saved; it applies to the next request.", "success")
        return redirect(url_for("dashboard.home", _anchor=f"key-{key.id}"))
    context = dashboard_context(user, CreateKeyForm(formdata=None), posted=(key.id, form))
    return render_template("dashboard/home.html", **context), 400


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


def redeem_code(user, code: str) -> redemption.Redemption:
    """Claim `code` for `user` and commit, each attempt counted against `VAULT_REDEEM_PER_HOUR`."""
    enforce_redeem_limit(runtime().limiter, user.id, request.remote_addr or "",
                         current_app.config["VAULT_REDEEM_PER_HOUR"])
    done = redemption.redeem(db.session, user.id, code, utcnow())
    db.session.commit()
    return done


@bp.post("/dashboard/redeem")
@login_required
def redeem():
    """Redeem a top-up code; a refusal shows at the field, with the API's status (404/409/410/429)."""
    user = current_user._get_current_object()
    form, status, headers = RedeemForm(), 400, {}
    if form.validate_on_submit():
        try:
            done = redeem_code(user, form.code.data)
        except (NotFound, Conflict, Gone, RateLimited) as refused:
            form.code.errors.append(refused.message)
            status, headers = refused.status, refused.headers
            if refused.retry_after is not None:
                headers["Retry-After"] = str(refused.retry_after)
        else:
            flash(f"Code {done.prefix}… added {usd(done.amount_nano)}; your balance is {usd(done.balance_nano)}.",
                  "success")
            return redirect(url_for("dashboard.home", _anchor="redeem"))
    context = dashboard_context(user, CreateKeyForm(formdata=None), redeem_form=form)
    return render_template("dashboard/home.html", **context), status, headers
