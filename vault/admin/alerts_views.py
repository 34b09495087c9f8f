"""The admin alerts page: the webhook, the pool threshold and email, and the delivery log."""

from flask import flash, redirect, render_template, url_for

from vault.admin import bp
from vault.admin.alerts_forms import AlertSettingsForm, WebhookForm
from vault.admin.views import require_action
from vault.alerts import raising
from vault.alerts import settings as alert_settings
from vault.alerts.mail import summary
from vault.errors import VaultError
from vault.extensions import db
from vault.forms import ActionForm
from vault.runtime import runtime

LOG_SIZE = 100


@bp.get("/alerts")
def alerts_page(webhook_form: WebhookForm | None = None, settings_form: AlertSettingsForm | None = None) -> str:
    """Where alerts go, when the pool alert fires, and how each alert's delivery went."""
    vault = runtime()
    row = alert_settings.load(db.session)
    shown = alert_settings.settings_json(row, vault.secret_box, vault.alerts.smtp is not None)
    if settings_form is None:
        settings_form = AlertSettingsForm(formdata=None, min_usable_keys=row.min_usable_keys if row else None,
                                          email_to=row.email_to if row else None)
    events = raising.recent_events(db.session, LOG_SIZE)
    return render_template("admin/alerts.html", settings=shown, events=events, summary=summary,
                           webhook_form=webhook_form or WebhookForm(formdata=None), settings_form=settings_form,
                           action_form=ActionForm())


@bp.post("/alerts/webhook")
def alerts_webhook():
    from vault.admin.alerts_api import save_webhook  # the audited save, shared with the JSON API

    form = WebhookForm()
    if not form.validate_on_submit():
        return alerts_page(webhook_form=form), 400
    try:
        save_webhook(form.url.data, form.secret.data)
    except VaultError as exc:
        db.session.rollback()
        form.url.errors.append(exc.fields.get("url") or exc.message)
        return alerts_page(webhook_form=form), 400
    db.session.commit()
    flash("Webhook saved. New alerts are POSTed to it, signed with the secret.", "success")
    return redirect(url_for("admin.alerts_page"))


@bp.post("/alerts/webhook/remove")
def alerts_webhook_remove():
    from vault.admin.alerts_api import save_webhook

    require_action()
    save_webhook(None, None)
    db.session.commit()
    flash("Webhook removed. Alerts are still recorded here.", "success")
    return redirect(url_for("admin.alerts_page"))


@bp.post("/alerts/settings")
def alerts_settings():
    from vault.admin.alerts_api import save_settings

    form = AlertSettingsForm()
    if not form.validate_on_submit():
        return alerts_page(settings_form=form), 400
    save_settings(form.min_usable_keys.data, (form.email_to.data or "").strip().lower() or None)
    db.session.commit()
    flash("Alert settings saved.", "success")
    return redirect(url_for("admin.alerts_page"))
