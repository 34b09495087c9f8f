"""The audit trail page: every admin action, filtered by who, what and when. Read-only by design."""

import json
from typing import Any

from flask import render_template, request
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import StringField
from wtforms.validators import Length, Optional

from vault import audit
from vault.admin import bp
from vault.admin.views import read_day
from vault.errors import BadRequest
from vault.extensions import db
from vault.models import AuditEntry

PER_PAGE = 50
# The action names the Vault records, offered as suggestions (a prefix such as `pool.` matches a family).
KNOWN_ACTIONS = ("user.", "user.update", "user.balance", "user.limits", "user.create_admin", "api_key.policy",
                 "price.", "price.put", "price.delete", "pool.", "pool.update", "pool.delete", "alias.", "alias.put",
                 "alias.delete", "model.settings", "invite.", "invite.create", "invite.revoke")


class AuditFilterForm(FlaskForm):
    """Filters read from the query string (a GET form: no CSRF needed)."""

    class Meta:
        csrf = False

    actor = StringField("Who (email or id)", validators=[Optional(), Length(max=254)])
    action = StringField("Action (or a prefix)", validators=[Optional(), Length(max=64)],
                         render_kw={"list": "audit-actions", "autocomplete": "off"})
    since = StringField("From (date)", validators=[Optional(), Length(max=32)])
    until = StringField("Until (date)", validators=[Optional(), Length(max=32)])


def shown(value: Any) -> str:
    """A before/after value as one readable line: text as is, the rest as compact JSON, none as a dash."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(", ", ": "), ensure_ascii=False)


def change_rows(entry: AuditEntry) -> list[dict[str, str]]:
    """One row per field the entry touched: its value before and after (None: that side does not name it,
    as the reason of a balance change, which has no before)."""
    before, after = entry.before or {}, entry.after or {}
    names = list(dict.fromkeys([*before, *after]))
    return [{"field": name, "before": shown(before[name]) if name in before else None,
             "after": shown(after[name]) if name in after else None} for name in names]


def audit_filters(form: AuditFilterForm) -> dict[str, Any] | None:
    """The search arguments, or None when a filter is unreadable (its field says why)."""
    if not form.validate():
        return None
    try:
        since, until = read_day(form.since), read_day(form.until, 1)
    except BadRequest:
        return None
    actor = (form.actor.data or "").strip()
    if actor.isdigit() and (not actor.isascii() or int(actor) > 2**31 - 1):
        form.actor.errors.append("No such user id.")
        return None
    return {"actor": actor, "action": (form.action.data or "").strip(), "since": since, "until": until}


@bp.get("/audit")
def audit_page() -> tuple[str, int]:
    """Admin actions, newest first, with what each changed; an unreadable filter is a 400 next to its field."""
    form = AuditFilterForm(formdata=MultiDict(request.args))
    filters = audit_filters(form)
    page = min(max(request.args.get("page", 1, type=int), 1), 1_000_000)
    entries, total = audit.search(db.session, **filters, page=page, per_page=PER_PAGE) if filters else ([], 0)
    return render_template("admin/audit.html", form=form, entries=[(entry, change_rows(entry)) for entry in entries],
                           total=total, page=page, per_page=PER_PAGE, actions=KNOWN_ACTIONS), 200 if filters else 400
