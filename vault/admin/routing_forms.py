"""Forms of the model routing page (aliases, hidden models, fallback chains)."""

import json

from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from vault.admin.forms import MODEL_ID


class AliasForm(FlaskForm):
    alias = StringField("Alias", validators=[DataRequired(), Length(max=128), MODEL_ID],
                        description="The name callers use, e.g. fast or gpt-4o-mini.")
    target = StringField("Target model", validators=[DataRequired(), Length(max=128), MODEL_ID])
    defaults = TextAreaField("Request defaults (JSON, optional)", validators=[Optional(), Length(max=16_384)],
                             description='A native request fragment that makes a virtual model, e.g. '
                                         '{"tools": [{"google_search": {}}]} or '
                                         '{"generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}}. '
                                         "It never overrides what a caller sets.")

    def validate_defaults(self, field) -> None:
        if field.data and field.data.strip():
            try:
                parsed = json.loads(field.data)
            except ValueError as exc:
                raise ValidationError("Enter a JSON object.") from exc
            if not isinstance(parsed, dict):
                raise ValidationError("Enter a JSON object.")

    def defaults_value(self) -> dict | None:
        text = (self.defaults.data or "").strip()
        return json.loads(text) if text else None


class ModelSettingForm(FlaskForm):
    model = StringField("Model", validators=[DataRequired(), Length(max=128), MODEL_ID])
    hidden = BooleanField("Hidden: left out of models.list and refused when called by this name")
    fallback = StringField("Fallback chain (optional)", validators=[Optional(), Length(max=700)],
                           description="Models tried in order when every key is cooling for this one, "
                                       "comma-separated, e.g. gemini-2.5-flash. Empty: no fallback.")

    def fallback_list(self) -> list[str]:
        return [name for name in (self.fallback.data or "").replace(",", " ").split() if name]
