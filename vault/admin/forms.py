"""Forms of the admin pages."""

from flask_wtf import FlaskForm
from wtforms import DecimalField, IntegerField, RadioField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    StopValidation,
    ValidationError,
)

from vault.forms import LimitsForm


class BalanceForm(FlaskForm):
    mode = RadioField("Change", choices=[("add", "Add to balance"), ("set", "Set balance to")], default="add",
                      validators=[InputRequired()],
                      description="“Set to X” leaves the user X minus whatever their requests in flight end up "
                                  "costing: the balance becomes X minus their open holds, and each hold refunds what "
                                  "its request did not use. “Add” just adds.")
    amount = DecimalField("Amount (USD)", places=None, validators=[InputRequired(), NumberRange(-1_000_000, 1_000_000)])
    reason = StringField("Reason", validators=[DataRequired(), Length(max=255)],
                         description="Kept in the ledger with your name, e.g. “invoice 1042”.")


class AddKeysForm(FlaskForm):
    keys = TextAreaField("Gemini API keys", validators=[DataRequired(), Length(max=200_000)],
                         description="Paste one or more keys, one per line (commas and spaces work too).")

    def key_list(self) -> list[str]:
        return [key for key in self.keys.data.replace(",", " ").split() if key]


def finite(form, field) -> None:
    """Refuse NaN and infinities before any range check compares them."""
    if field.data is not None and not field.data.is_finite():
        raise StopValidation("Enter a number.")


PRICE = [Optional(), finite, NumberRange(0, 100_000)]
MODEL_ID = Regexp(r"^(models/)?[A-Za-z0-9._\-]+$", message="A model id such as gemini-2.5-flash.")


class PriceForm(FlaskForm):
    model = StringField("Model", validators=[DataRequired(), Length(max=128), MODEL_ID])
    input = DecimalField("Input", places=None, validators=[InputRequired(), finite, NumberRange(0, 100_000)])
    output = DecimalField("Output", places=None, validators=[InputRequired(), finite, NumberRange(0, 100_000)])
    cached_input = DecimalField("Cached input", places=None, validators=PRICE)
    tier_threshold = IntegerField("Higher tier above (prompt tokens)", validators=[Optional(), NumberRange(1, 10**9)])
    input_above = DecimalField("Input above", places=None, validators=PRICE)
    output_above = DecimalField("Output above", places=None, validators=PRICE)
    cached_input_above = DecimalField("Cached above", places=None, validators=PRICE)
    audio_input = DecimalField("Audio input", places=None, validators=PRICE)
    cached_audio_input = DecimalField("Cached audio", places=None, validators=PRICE)
    grounding_fee = DecimalField("Search grounding (USD per 1,000)", places=None, validators=PRICE)
    grounding_unit = SelectField("Charged per", default="prompt", choices=[
        SelectChoice("prompt", "grounded prompt"), SelectChoice("query", "search query")])
    image = DecimalField("Image (USD per image)", places=None, validators=[Optional(), finite, NumberRange(0, 1_000)])

    def validate_grounding_fee(self, field) -> None:
        """Six decimals at most, so the fee of one request is a whole nano-USD."""
        if field.data is not None and field.data.as_tuple().exponent < -6:
            raise ValidationError("At most six decimals.")


class UsageFilterForm(FlaskForm):
    """Filters read from the query string (a GET form: no CSRF needed)."""

    class Meta:
        csrf = False

    user = StringField("User (email or id)", validators=[Optional(), Length(max=254)])
    key = IntegerField("Key id", validators=[Optional(), NumberRange(1)])
    model = StringField("Model", validators=[Optional(), Length(max=128)])
    status = IntegerField("Status", validators=[Optional(), NumberRange(100, 599)])
    since = StringField("From (date)", validators=[Optional(), Length(max=32)])
    until = StringField("Until (date)", validators=[Optional(), Length(max=32)])


class UserLimitsForm(LimitsForm):
    """A user's limits: the ceilings of their keys, and the models they may see at all."""

    visible_models = StringField("Visible models", validators=[Optional(), Length(max=4000)],
                                 description="Patterns, comma-separated: the only models this user sees and may "
                                             "call. Empty: every model.")

    NAMES = (*LimitsForm.NAMES, "visible_models")
    LISTS = (*LimitsForm.LISTS, "visible_models")


class InviteForm(FlaskForm):
    note = StringField("Note", validators=[Optional(), Length(max=255)],
                       description="Who it is for, e.g. “Grace, data team”. Only admins see it.")
    expires_in_days = IntegerField("Expires after (days)", validators=[Optional(), NumberRange(1, 365)],
                                   description="Empty: the invite never expires.")
