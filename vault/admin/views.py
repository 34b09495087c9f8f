"""Admin pages: overview, users and balances, the key pool, prices, the usage log."""

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta

from flask import Response, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.datastructures import MultiDict

from vault import accounts, charts, pool
from vault.admin import auditing, bp
from vault.admin.auditing import audited, audited_change
from vault.admin.forms import BalanceForm, InviteForm, PriceForm, UsageFilterForm, UserLimitsForm
from vault.alerts.mail import summary as alert_summary
from vault.alerts.raising import recent_events as recent_alerts
from vault.billing import balances, limits, queries
from vault.billing import prices as price_table
from vault.billing.money import usd_to_nano
from vault.clock import utcnow
from vault.dashboard.views import key_cards
from vault.errors import BadRequest, NotFound, ValidationFailed
from vault.extensions import db
from vault.forms import (
    ActionForm,
    KeyPolicyForm,
    save_key_policy,
    save_user_limits,
    stored_to_form,
    token_required,
)
from vault.inbound import INTEGER_MAX, page_number, whole_number
from vault.jobs import key_check
from vault.models import ModelPrice, User
from vault.proxy.dialects import normalize_model
from vault.resources import summary
from vault.runtime import runtime
from vault.upstream.failover import check_key

PER_PAGE = 25
PRICE_FIELDS = ("input", "output", "cached_input", "tier_threshold", "input_above", "output_above",
                "cached_input_above", "audio_input", "cached_audio_input", "grounding_fee", "grounding_unit", "image")


def require_action() -> None:
    """Every button posts a CSRF token; an expired one is a clear 400."""
    if not ActionForm().validate_on_submit():
        raise BadRequest("The form expired; reload the page and try again.")


@bp.get("/")
def overview() -> str:
    """Requests, errors, tokens and spend, and the pool at a glance."""
    now, today = utcnow(), utcnow().date()
    periods = {label: queries.totals(db.session, queries.Filters(since=now - delta))
               for label, delta in (("Last 24 hours", timedelta(days=1)), ("Last 7 days", timedelta(days=7)))}
    since = datetime.combine(today - timedelta(days=13), time.min, UTC)
    daily = charts.cost_rows(queries.by_day_and_model(db.session, queries.Filters(since=since)))
    keys = pool.list_upstream_keys(db.session)
    key_usage, key_usage_total = queries.by_upstream_key(db.session, now - timedelta(days=1))
    return render_template(
        "admin/overview.html", periods=periods, keys=keys, now=now,
        requests_chart=charts.daily_chart(daily, today, 14, "requests", charts.REQUESTS, "Requests per day"),
        spend_chart=charts.daily_chart(daily, today, 14, "cost_nano", charts.SPEND, "Spend per day"),
        key_usage=key_usage, key_usage_total=key_usage_total,
        pool_counts=pool.count_by_state(keys, now),
        alerts=recent_alerts(db.session, 5), alert_summary=alert_summary,
    )


@bp.get("/users")
def users() -> str:
    """Users: search by email, sort, paginate."""
    text, sort = request.args.get("q", "")[:254], request.args.get("sort", "newest")
    page = page_number(request.args.get("page"))
    found, total = accounts.search_users(db.session, text, sort, page, PER_PAGE)
    return render_template("admin/users.html", users=found, total=total, page=page, per_page=PER_PAGE, q=text,
                           sort=sort, sorts=list(accounts.USER_SORTS))


@bp.get("/users/<int:user_id>")
def user_detail(user_id: int, balance_form: BalanceForm | None = None, limits_form: UserLimitsForm | None = None,
                posted: tuple[int, KeyPolicyForm] | None = None) -> str:
    """A user: balance and ledger check, limits, keys with their policy, files and caches, recent requests.

    A form sent back with errors replaces its blank one: `balance_form`, `limits_form`, or `posted`
    (a key id and its policy form).
    """
    user = accounts.get_user(db.session, user_id)
    recent, total = queries.page(db.session, queries.Filters(user_id=user.id), 1, 20)
    adjustments = balances.recent_adjustments(db.session, user.id)
    (check,) = balances.check_balances(db.session, user.id)
    keys = accounts.list_api_keys(db.session, user)
    limits_form = limits_form or UserLimitsForm(formdata=None, data=stored_to_form(user.limits or {}))
    return render_template("admin/user.html", user=user, recent=recent, total=total, adjustments=adjustments,
                           check=check,
                           balance_form=balance_form or BalanceForm(formdata=None), action_form=ActionForm(),
                           keys=keys, cards=key_cards(keys, posted), posted_key=posted[0] if posted else None,
                           limits_form=limits_form,
                           default_rpm=runtime().default_rpm,
                           resources=summary.user_resources(db.session, user.id,
                                                            current_app.config["VAULT_USER_STORAGE_BYTES"], utcnow()))


@bp.post("/users/<int:user_id>/balance")
@token_required
def user_balance(user_id: int):
    user = accounts.get_user(db.session, user_id)
    form = BalanceForm()
    if not form.validate_on_submit():
        return user_detail(user_id, balance_form=form), 400
    admin_id, reason, amount = current_user.id, form.reason.data.strip(), form.amount.data
    if form.mode.data == "set":
        adjustment = balances.set_balance(db.session, user.id, admin_id, usd_to_nano(amount), reason)
    else:
        adjustment = balances.add_to_balance(db.session, user.id, admin_id, usd_to_nano(amount), reason)
    auditing.audit_balance(user.id, adjustment)
    db.session.commit()
    flash(f"Balance of {user.email} updated.", "success")
    return redirect(url_for("admin.user_detail", user_id=user.id))


@bp.post("/users/<int:user_id>/limits")
def user_limits(user_id: int):
    """Set a user's limits: their keys' ceilings and the models they may see (empty fields: none)."""
    user = accounts.get_user(db.session, user_id)
    form, before = UserLimitsForm(), auditing.user_limits(user)
    if form.validate_on_submit() and save_user_limits(form, user):
        audited_change("user.limits", f"user:{user.id}", before, auditing.user_limits(user))
        db.session.commit()
        flash(f"Limits of {user.email} saved; they apply to every key of theirs from the next request.", "success")
        return redirect(url_for("admin.user_detail", user_id=user.id, _anchor="limits-title"))
    return user_detail(user_id, limits_form=form), 400


@bp.post("/users/<int:user_id>/keys/<int:key_id>/limit")
def key_policy(user_id: int, key_id: int):
    """Set one Vault key's policy (above the global default if need be, never above its owner's limits)."""
    key = accounts.find_changeable_key(db.session, user_id, key_id)
    form, before = KeyPolicyForm(), auditing.key_policy(key)
    if form.validate_on_submit() and save_key_policy(form, key, None):
        audited_change("api_key.policy", f"api_key:{key.id}", before, auditing.key_policy(key))
        db.session.commit()
        flash(f"Policy of key {key.name or key.prefix} saved.", "success")
        return redirect(url_for("admin.user_detail", user_id=user_id, _anchor=f"key-{key.id}"))
    return user_detail(user_id, posted=(key.id, form)), 400


@bp.post("/users/<int:user_id>/active")
def user_active(user_id: int):
    require_action()
    user = accounts.get_user(db.session, user_id)
    active = request.form.get("value") == "on"
    accounts.refuse_self_lockout(current_user, user, active=active)
    before = auditing.user_state(user)
    accounts.set_user_active(db.session, user, active)
    audited_change("user.update", f"user:{user.id}", before, auditing.user_state(user))
    db.session.commit()
    flash(f"{user.email} is now {'active' if active else 'deactivated; their keys and sessions stop working'}.",
          "success")
    return redirect(url_for("admin.user_detail", user_id=user.id))


@bp.post("/users/<int:user_id>/admin")
def user_role(user_id: int):
    require_action()
    user = accounts.get_user(db.session, user_id)
    make_admin = request.form.get("value") == "on"
    accounts.refuse_self_lockout(current_user, user, admin=make_admin)
    before = auditing.user_state(user)
    user.is_admin = make_admin
    audited_change("user.update", f"user:{user.id}", before, auditing.user_state(user))
    db.session.commit()
    flash(f"{user.email} {'is now an admin' if make_admin else 'is no longer an admin'}.", "success")
    return redirect(url_for("admin.user_detail", user_id=user.id))


def invite_url(code: str) -> str:
    """The sign-up link that fills in `code`, at the address clients use."""
    base = (current_app.config["VAULT_PUBLIC_URL"] or request.host_url).rstrip("/")
    return base + url_for("auth.register", invite=code)


@bp.get("/invites")
def invites(form: InviteForm | None = None, new_invite: accounts.NewInvite | None = None) -> str:
    """Invites: create one (its link is shown once), see who used which, revoke unused ones."""
    found = accounts.list_invites(db.session)
    return render_template("admin/invites.html", invites=found, form=form or InviteForm(formdata=None),
                           action_form=ActionForm(), new_invite=new_invite,
                           new_url=invite_url(new_invite.code) if new_invite else None, now=utcnow())


@bp.post("/invites")
def invite_create():
    form = InviteForm()
    if not form.validate_on_submit():
        return invites(form), 400
    now = utcnow()
    expires_at = now + timedelta(days=form.expires_in_days.data) if form.expires_in_days.data else None
    new_invite = accounts.create_invite(db.session, current_user, form.note.data or "", expires_at)
    auditing.audit_invite_created(new_invite.record)
    db.session.commit()
    return invites(InviteForm(formdata=None), new_invite), 201


@bp.post("/invites/<int:invite_id>/revoke")
def invite_revoke(invite_id: int):
    require_action()
    auditing.revoke_invite(invite_id)
    db.session.commit()
    flash("The invite was revoked; its link no longer works.", "success")
    return redirect(url_for("admin.invites"))


def refresh_pool(results: list[pool.AddedKey]) -> None:
    """Every worker sees the added keys; a revived one is cleared of the state it was deleted in."""
    health = runtime().health
    for result in results:
        if result.revived:
            health.set_enabled(result.key.id, True)
    health.refresh(force=True)


@bp.post("/keys/<int:key_id>/state")
def pool_state(key_id: int):
    require_action()
    key = pool.find_upstream_key(db.session, key_id)
    enabled, before = request.form.get("value") == "on", auditing.pool_key(key)
    pool.set_upstream_key_state(db.session, key, enabled)
    audited_change("pool.update", f"upstream_key:{key.id}", before, auditing.pool_key(key))
    db.session.commit()
    runtime().health.set_enabled(key.id, enabled)
    warning = "" if enabled else summary.held_by(db.session, key.id, utcnow()).disable_warning
    flash(f"Key {key.masked} is now {key.state.value}. {warning}".strip(), "success")
    return redirect(url_for("admin.pool_page"))


@bp.post("/keys/<int:key_id>/delete")
def pool_delete(key_id: int):
    require_action()
    key = pool.find_upstream_key(db.session, key_id)
    before = auditing.pool_key(key)
    pool.delete_upstream_key(db.session, key)
    audited("pool.delete", f"upstream_key:{key.id}", before, auditing.pool_key(key))
    db.session.commit()
    runtime().health.refresh(force=True)
    warning = summary.held_by(db.session, key.id, utcnow()).delete_warning
    flash(f"Key {key.masked} was removed from the pool. {warning}".strip(), "success")
    return redirect(url_for("admin.pool_page"))


@bp.post("/keys/<int:key_id>/proxy")
def pool_proxy(key_id: int):
    """Set the key's egress proxy, or clear it (an empty field): the URL is never echoed, only its masked form."""
    require_action()
    key = pool.find_upstream_key(db.session, key_id)
    box, before = runtime().secret_box, auditing.pool_key(key)
    try:
        pool.set_upstream_key_proxy(key, request.form.get("proxy_url", "").strip() or None, box)
    except ValidationFailed as exc:
        flash(f"Key {key.masked}: {exc.fields.get('proxy_url', exc.message)}", "error")
        return redirect(url_for("admin.pool_page"))
    audited_change("pool.update", f"upstream_key:{key.id}", before, auditing.pool_key(key))
    db.session.commit()
    runtime().health.refresh(force=True)
    shown = pool.masked_proxy(key, box)
    flash(f"Key {key.masked} now goes {f'through {shown}' if shown else 'out by the default egress'}.", "success")
    return redirect(url_for("admin.pool_page"))


@bp.post("/keys/<int:key_id>/check")
def pool_check(key_id: int):
    """One cheap upstream call with this key, audited as `pool.check` like a check job; the result lands in its
    health."""
    require_action()
    vault = runtime()
    key = vault.health.key(pool.find_upstream_key(db.session, key_id).id)
    outcome = check_key(key, vault.upstream, vault.health)
    audited("pool.check", f"upstream_key:{key.id}", None,
            {"ids": [key.id], "result": key_check.OUTCOMES.get(outcome.verdict, "failed")}, only_changes=False)
    db.session.commit()
    verdict = "works" if outcome.verdict.value == "ok" else f"failed: {outcome.summary}"
    flash(f"Key {key.masked} {verdict}.", "success" if outcome.verdict.value == "ok" else "error")
    return redirect(url_for("admin.pool_page"))


@bp.get("/prices")
def prices(form: PriceForm | None = None) -> str:
    """The price table with its editor, and the model table (token limits) read-only."""
    rows = db.session.scalars(db.select(ModelPrice).order_by(ModelPrice.model)).all()
    book = runtime().prices
    return render_template("admin/prices.html", rows=rows, form=form or PriceForm(formdata=None),
                           action_form=ActionForm(), fallback=book.fallback, models=limits.list_models(db.session),
                           default_limits=book.default_limits)


@bp.post("/prices")
def price_save():
    form = PriceForm()
    if not form.validate_on_submit():
        return prices(form), 400
    fields = {name: form[name].data for name in PRICE_FIELDS}
    model = normalize_model(form.model.data)
    before = auditing.price_row(db.session.get(ModelPrice, model))
    row = price_table.upsert_price(db.session, model, price_table.PriceInput(**fields))
    audited_change("price.put", f"price:{model}", before, auditing.price_row(row))
    db.session.commit()
    runtime().prices.refresh()
    flash(f"Prices of {model} saved.", "success")
    return redirect(url_for("admin.prices"))


@bp.post("/prices/<model>/delete")
def price_delete(model: str):
    require_action()
    row = db.session.get(ModelPrice, model)
    if row is None:
        raise NotFound("No price for this model.")
    before = auditing.price_row(row)
    price_table.remove_price(db.session, row)
    audited("price.delete", f"price:{model}", before, None)
    db.session.commit()
    runtime().prices.refresh()
    flash(f"Prices of {model} removed; it now pays the fallback price.", "success")
    return redirect(url_for("admin.prices"))


def usage_filters(form: UsageFilterForm) -> queries.Filters:
    """Filters from the form; an unknown user or an unreadable date is a 400 next to the field."""
    user_id = None
    if form.user.data:
        text = form.user.data.strip()
        number = whole_number(text, INTEGER_MAX)
        user = db.session.get(User, number) if number is not None else accounts.find_user_by_email(db.session, text)
        if user is None:
            form.user.errors.append("No such user.")
            raise BadRequest("Unknown user.")
        user_id = user.id
    return queries.Filters(user_id=user_id, api_key_id=form.key.data, model=form.model.data or None,
                             status=form.status.data, since=read_day(form.since), until=read_day(form.until, 1))


def read_day(field, extra_days: int = 0) -> datetime | None:
    """The start of the field's day plus `extra_days`; `BadRequest` (the field says why) if it is no date."""
    if not field.data:
        return None
    try:
        day = date.fromisoformat(field.data.strip())
    except ValueError:
        field.errors.append("Use a date like 2026-11-25.")
        raise BadRequest("Unreadable date.") from None
    try:
        return datetime.combine(day + timedelta(days=extra_days), time.min, UTC)
    except OverflowError:  # the day after 9999-12-31: every record is before it, so there is no bound
        return None


def usage_form() -> tuple[UsageFilterForm, queries.Filters | None]:
    form = UsageFilterForm(formdata=MultiDict(request.args))
    if not form.validate():
        return form, None
    try:
        return form, usage_filters(form)
    except BadRequest:
        return form, None


@bp.get("/usage")
def usage() -> tuple[str, int]:
    form, filters = usage_form()
    page = page_number(request.args.get("page"))
    records, total = queries.page(db.session, filters, page, 50) if filters else ([], 0)
    user_ids = {record.user_id for record in records}
    emails = {user.id: user.email for user in db.session.scalars(db.select(User).where(User.id.in_(user_ids)))}
    return render_template("admin/usage.html", form=form, records=records, total=total, page=page, per_page=50,
                           emails=emails), 200 if filters else 400


CSV_COLUMNS = ["started_at", "settlement_id", "client_request_id", "user_id", "api_key_id", "upstream_key_id",
               "endpoint", "model", "status", "streamed", "ending", "usage_source", "prompt_tokens", "cached_tokens",
               "output_tokens", "thoughts_tokens", "total_tokens", "cost_usd", "first_byte_ms", "total_ms", "error"]


def csv_safe(value):
    """Text a spreadsheet will not run as a formula (model names come from clients)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


@bp.get("/usage.csv")
def usage_csv() -> Response:
    """The filtered usage log as CSV: every matching row, streamed as it is read."""
    form, filters = usage_form()
    if filters is None:
        raise BadRequest("Fix the filters first: " + "; ".join(f"{k}: {v[0]}" for k, v in form.errors.items()))
    stamp = utcnow().strftime("%Y%m%d-%H%M%S")
    rows = csv_lines(queries.every_record(runtime().session_factory, filters))
    return Response(rows, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="usage-{stamp}.csv"'})


def csv_lines(records) -> Iterator[str]:
    """The header, then one CSV line per record."""
    yield csv_line(CSV_COLUMNS)
    for record in records:
        row = queries.record_json(record)
        values = [row["started_at"], *(row[c] for c in CSV_COLUMNS[1:17]), row["cost"], row["first_byte_ms"],
                  row["total_ms"], row["error"] or ""]
        yield csv_line([csv_safe(value) for value in values])


def csv_line(values: list) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(values)
    return out.getvalue()
