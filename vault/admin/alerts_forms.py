"""Forms of the admin alerts page."""

from flask_wtf import FlaskForm
from wtforms import IntegerField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, Length, NumberRange, Optional

from vault.alerts.settings import MIN_SECRET_LENGTH


class WebhookForm(FlaskForm):
    url = StringField("Webhook URL", validators=[DataRequired(), Length(max=2000)],
                      description="An http:// or https:// address that accepts a JSON POST.")
    secret = PasswordField("Signing secret", validators=[DataRequired(), Length(MIN_SECRET_LENGTH, 512)],
                           description=f"At least {MIN_SECRET_LENGTH} characters; the receiver checks X-GV-Signature "
                                       "with it. Stored encrypted, shown masked.")


class AlertSettingsForm(FlaskForm):
    min_usable_keys = IntegerField("Alert when fewer usable keys than",
                                   validators=[Optional(), NumberRange(1, 1_000_000)],
                                   description="Empty: no pool alert.")
    email_to = StringField("Also email alerts to", validators=[Optional(), Email(), Length(max=254)],
                           description="Needs VAULT_SMTP_HOST. Empty: no email.")
