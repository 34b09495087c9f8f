"""The model routing page: models (hidden, fallback chain) and aliases (target, request defaults)."""

import json

from flask import flash, redirect, render_template, url_for

from vault.admin import auditing, bp
from vault.admin.routing_forms import AliasForm, ModelSettingForm
from vault.admin.views import require_action
from vault.billing import limits
from vault.errors import VaultError
from vault.extensions import db
from vault.forms import ActionForm
from vault.models import ModelAlias, ModelSetting
from vault.routing import changes
from vault.routing.merge import native_only, openai_defaults


@bp.get("/models")
def models_page(alias_form: AliasForm | None = None, setting_form: ModelSettingForm | None = None) -> str:
    """Every known model with its routing settings, every alias, and the forms that change them."""
    settings = changes.settings_by_model(db.session)
    names = sorted({row.model for row in limits.list_models(db.session)} | set(settings))
    aliases = [{"row": row, "defaults": json.dumps(row.defaults) if row.defaults else "",
                "openai": json.dumps(openai_defaults(row.defaults)) if row.defaults else "",
                "native_only": native_only(row.defaults) if row.defaults else []}
               for row in changes.list_aliases(db.session)]
    return render_template("admin/models.html", models=[(name, settings.get(name)) for name in names],
                           aliases=aliases, alias_form=alias_form or AliasForm(formdata=None),
                           setting_form=setting_form or ModelSettingForm(formdata=None), action_form=ActionForm())


@bp.post("/models/settings")
def model_setting_save():
    form = ModelSettingForm()
    if not form.validate_on_submit():
        return models_page(setting_form=form), 400
    try:
        name = changes.check_name(form.model.data, "model")
        before = auditing.model_setting(db.session.get(ModelSetting, name))
        setting = changes.put_setting(db.session, name, form.hidden.data, form.fallback_list())
    except VaultError as exc:
        db.session.rollback()
        form.model.errors.append(next(iter(exc.fields.values()), exc.message))
        return models_page(setting_form=form), 400
    auditing.audited_change("model.settings", f"model:{name}", before, auditing.model_setting(setting))
    db.session.commit()
    flash(f"Settings of {form.model.data} saved.", "success")
    return redirect(url_for("admin.models_page"))


@bp.post("/models/aliases")
def alias_save():
    form = AliasForm()
    if not form.validate_on_submit():
        return models_page(alias_form=form), 400
    before = auditing.alias_row(db.session.get(ModelAlias, form.alias.data.strip().removeprefix("models/")))
    try:
        row = changes.put_alias(db.session, form.alias.data, form.target.data, form.defaults_value())
    except VaultError as exc:
        db.session.rollback()
        form.alias.errors.append(next(iter(exc.fields.values()), exc.message))
        return models_page(alias_form=form), 400
    auditing.audited_change("alias.put", f"alias:{row.alias}", before, auditing.alias_row(row))
    db.session.commit()
    flash(f"Alias {form.alias.data} saved.", "success")
    return redirect(url_for("admin.models_page"))


@bp.post("/models/aliases/<alias>/delete")
def alias_delete(alias: str):
    require_action()
    name = alias.strip().removeprefix("models/")
    before = auditing.alias_row(db.session.get(ModelAlias, name))
    changes.delete_alias(db.session, alias)
    auditing.audited("alias.delete", f"alias:{name}", before, None)
    db.session.commit()
    flash(f"Alias {alias} removed.", "success")
    return redirect(url_for("admin.models_page"))
