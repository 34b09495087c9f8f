"""The key pool page at scale: search, filter and page the keys, import thousands at once, change
many at once, and check them in the background (the page shows the running check after a reload).

The per-key buttons (state, delete, proxy, check) are in `vault.admin.views`; the pieces both
the page and the JSON API use -- `apply_bulk`, `start_pool_check` -- are here.
"""

from flask import current_app, flash, redirect, render_template, request, url_for

from vault import jobs, pool
from vault.admin import bp
from vault.admin.auditing import audited
from vault.admin.forms import AddKeysForm, BulkKeysForm, CheckKeysForm
from vault.admin.views import refresh_pool
from vault.auth.identity import require_user
from vault.clock import isoformat, utcnow
from vault.errors import BadRequest, VaultError
from vault.extensions import db
from vault.forms import ActionForm
from vault.inbound import page_number
from vault.jobs import key_check
from vault.models import Job, UpstreamKey, UpstreamKeyState
from vault.pool import bulk
from vault.resources import summary
from vault.runtime import runtime

PER_PAGE, MAX_PER_PAGE = 50, 500
STATE_FILTERS = ("", "active", "cooling", "disabled")


def apply_bulk(keys: list[UpstreamKey], action: bulk.BulkAction, label: str = "") -> list[UpstreamKey]:
    """Enable, disable, delete or relabel `keys`, audited as `pool.bulk_<action>`, committed, and every
    worker told; returns the keys that changed."""
    before = {key.id: bulk_value(key, action) for key in keys}
    changed = bulk.change_upstream_keys(db.session, keys, action, label)
    if changed:
        audited(f"pool.bulk_{action}", f"upstream_keys:{len(changed)}",
                {"keys": {key.id: before[key.id] for key in changed}},
                {"keys": {key.id: bulk_value(key, action) for key in changed}}, only_changes=False)
    db.session.commit()
    health = runtime().health
    if action in ("enable", "disable") and changed:
        health.set_enabled_many([key.id for key in changed], action == "enable")
    elif action == "delete" and changed:
        health.refresh(force=True)
    return changed


def bulk_value(key: UpstreamKey, action: bulk.BulkAction) -> str:
    """What a bulk action changes on `key`, as its audit entry keeps it: the label, or the state -- a timed
    disable with its end, so making it last reads as a change."""
    if action == "label":
        return key.label
    if key.state is UpstreamKeyState.DISABLED and key.disabled_until is not None:
        return f"disabled until {isoformat(key.disabled_until)}"
    return key.state.value


def start_pool_check(ids: list[int] | None) -> Job:
    """Start checking `ids` (every pooled key if None) in the background, audited as `pool.check`; while a
    check runs, none is started beside it and that job is the answer."""
    return check_pool(ids)[0]


def check_pool(ids: list[int] | None) -> tuple[Job, bool]:
    """`start_pool_check`, and whether it started the job (False: the one already running)."""
    vault = runtime()
    checker = key_check.Checker(vault.session_factory, vault.health, vault.upstream,
                                current_app.config["VAULT_KEY_CHECK_CONCURRENCY"])
    return key_check.start_check(db.session, checker, ids, require_user().id, record=lambda: audited(
        "pool.check", "upstream_keys", None, {"ids": ids if ids is not None else "all"}, only_changes=False))


def page_search() -> bulk.KeySearch:
    """The page's filters from the query string; anything unreadable falls back to its default."""
    state = request.args.get("state", "")
    per_page = min(max(request.args.get("per_page", PER_PAGE, type=int), 1), MAX_PER_PAGE)
    return bulk.KeySearch(request.args.get("q", "").strip()[:200], state if state in STATE_FILTERS else "",
                          page_number(request.args.get("page")), per_page)


@bp.get("/keys")
def pool_page(form: AddKeysForm | None = None, report: bulk.ImportReport | None = None):
    """The pool: import keys; find, page and select keys; their health, holdings and buttons; the check job."""
    now, box, search = utcnow(), runtime().secret_box, page_search()
    keys, total = bulk.search_upstream_keys(db.session, search, now)
    page_ids = {key.id for key in keys}
    holdings = {key_id: summary.held_by(db.session, key_id, now)
                for key_id in summary.held_counts(db.session, now) if key_id in page_ids}
    job = jobs.latest_job(db.session, key_check.KIND, now)
    return render_template("admin/pool.html", keys=keys, total=total, search=search, now=now,
                           form=form or AddKeysForm(formdata=None), action_form=ActionForm(), holdings=holdings,
                           proxies={key.id: pool.masked_proxy(key, box) for key in keys},
                           counts=bulk.count_states(db.session, now), job=job, report=report,
                           states=STATE_FILTERS)


@bp.post("/keys")
def pool_add():
    """Import pasted or uploaded keys: added, duplicates and invalid ones (with the reason) are reported."""
    form = AddKeysForm()
    if not form.validate_on_submit():
        return pool_page(form), 400
    secrets = form.key_list()
    if len(secrets) > bulk.MAX_IMPORT:
        form.keys.errors.append(f"At most {bulk.MAX_IMPORT:,} keys at once; this had {len(secrets):,}.")
        return pool_page(form), 400
    try:
        report = bulk.import_upstream_keys(db.session, secrets, runtime().secret_box, (form.label.data or "").strip())
    except VaultError as exc:
        form.keys.errors.append(exc.message)
        return pool_page(form), 400
    if report.added:
        audited("pool.add", "upstream_keys", None, {"added": len(report.added), "duplicates": report.duplicate_count,
                                                     "invalid": len(report.invalid)}, only_changes=False)
    db.session.commit()
    refresh_pool(report.added)
    flash(f"Added {len(report.added)} key(s); {report.duplicate_count} already in the pool"
          f"{f'; {len(report.invalid)} invalid' if report.invalid else ''}.",
          "success" if report.added or not report.invalid else "error")
    if report.invalid:
        return pool_page(AddKeysForm(formdata=None), report), 200 if report.added or report.duplicates else 400
    return redirect(url_for("admin.pool_page"))


def back_to_page():
    """Where the bulk and check buttons return: the page, filters and paging kept."""
    kept = {name: request.args[name] for name in ("q", "state", "page", "per_page") if request.args.get(name)}
    return redirect(url_for("admin.pool_page", **kept))


@bp.post("/keys/bulk")
def pool_bulk():
    """Enable, disable, delete or relabel the selected keys."""
    form = BulkKeysForm()
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            raise BadRequest("The form expired; reload the page and try again.")
        flash("; ".join(error for errors in form.errors.values() for error in errors), "error")
        return pool_page(), 400
    keys = bulk.find_upstream_keys(db.session, form.ids.data)
    changed = apply_bulk(keys, form.action.data, form.label.data or "")
    flash(f"{form.action.data.capitalize()}: {len(changed)} of {len(form.ids.data)} selected key(s) changed.",
          "success")
    return back_to_page()


@bp.post("/keys/check")
def pool_check_many():
    """Check every key, or the selected ones, in the background; the page shows the progress."""
    form = CheckKeysForm()
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            raise BadRequest("The form expired; reload the page and try again.")
        flash("; ".join(error for errors in form.errors.values() for error in errors), "error")
        return pool_page(), 400
    job, started = check_pool(form.ids.data if form.scope.data == "selected" else None)
    if started:
        flash(f"Checking {job.total} key(s) in the background.", "success")
    else:
        flash(f"A check is already running ({job.done} of {job.total} key(s) done); wait for it to finish.", "error")
    return back_to_page()
