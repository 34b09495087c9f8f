"""The admin page of redemption codes: mint a batch (its codes shown once, with their CSV), list them all.

The CSV of a new batch travels inside the page that shows the codes (a `data:` link), so the
plaintext codes are never stored and cannot be fetched again.
"""

import csv
import io
from datetime import timedelta
from urllib.parse import quote

from flask import render_template, request
from flask_login import current_user

from vault.admin import bp
from vault.admin.auditing import audited
from vault.admin.forms import MintCodesForm
from vault.billing import redemption
from vault.billing.money import nano_to_usd, usd_to_nano
from vault.clock import isoformat, utcnow
from vault.extensions import db
from vault.forms import token_required
from vault.inbound import page_number

PER_PAGE = 50
CSV_HEADER = ["code", "amount_usd", "expires_at", "note", "batch"]


def batch_csv(minted: redemption.MintedBatch) -> str:
    """The new batch as CSV text: one row per code (a note is kept from running as a formula)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for code, record in zip(minted.codes, minted.records, strict=True):
        note = "'" + record.note if record.note[:1] in ("=", "+", "-", "@", "\t", "\r") else record.note
        writer.writerow([code, f"{nano_to_usd(record.amount_nano):f}", isoformat(record.expires_at) or "", note,
                         minted.batch])
    return out.getvalue()


def page_filters() -> tuple[str, str, int]:
    """State, batch and page from the query string; anything unknown reads as no filter."""
    state = request.args.get("state", "")
    return (state if state in redemption.STATES else "", request.args.get("batch", "").strip()[:32],
            page_number(request.args.get("page")))


@bp.get("/redemption-codes")
def codes(form: MintCodesForm | None = None, minted: redemption.MintedBatch | None = None) -> str:
    """Mint codes and see every code's state, amount, note and redeemer (never the code)."""
    now = utcnow()
    state, batch, page = page_filters()
    found, total = redemption.search(db.session, now, state, batch, page, PER_PAGE)
    csv_href = "data:text/csv;charset=utf-8," + quote(batch_csv(minted)) if minted else None
    return render_template("admin/codes.html", form=form or MintCodesForm(formdata=None), codes=found, total=total,
                           page=page, per_page=PER_PAGE, state=state, batch=batch, now=now, minted=minted,
                           csv_href=csv_href, emails=redemption.emails(db.session, found))


@bp.post("/redemption-codes")
@token_required
def codes_mint():
    form = MintCodesForm()
    if not form.validate_on_submit():
        return codes(form), 400
    now = utcnow()
    expires_at = now + timedelta(days=form.expires_in_days.data) if form.expires_in_days.data else None
    minted = redemption.mint(db.session, current_user.id, usd_to_nano(form.amount.data), form.count.data,
                             expires_at, form.note.data or "", now)
    audited("codes.mint", f"batch:{minted.batch}", None, redemption.batch_summary(minted))
    db.session.commit()
    return codes(MintCodesForm(formdata=None), minted), 201
