"""Forms of the admin pages."""

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from werkzeug.datastructures import FileStorage
from wtforms import DecimalField, Field, IntegerField, RadioField, SelectField, StringField, TextAreaField
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
from vault.inbound import INTEGER_MAX
from vault.pool.bulk import split_keys


class BalanceForm(FlaskForm):
    mode = RadioField("Change", choices=[("add", "Add to balance"), ("set", "Set balance to")], default="add",
                      validators=[InputRequired()],
                      description="“Set to X” leaves the user X minus whatever their requests in flight end up "
                                  "costing: the balance becomes X minus their open holds, and each hold refunds what "
                                  "its request did not use. “Add” just adds.")
    amount = DecimalField("Amount (USD)", places=None, validators=[InputRequired(), NumberRange(-1_000_000, 1_000_000)])
    reason = StringField("Reason", validators=[DataRequired(), Length(max=255)],
                         description="Kept in the ledger with your name, e.g. “invoice 1042”.")


MAX_IMPORT_BYTES = 2_000_000  # 10,000 keys of up to ~200 characters


class AddKeysForm(FlaskForm):
    """Import keys: pasted, or a text file with one key per line (commas and spaces tolerated)."""

    keys = TextAreaField("Gemini API keys", validators=[Optional(), Length(max=MAX_IMPORT_BYTES)],
                         description="Paste keys, one per line (commas and spaces work too): thousands at once.")
    file = FileField("…or a text file", validators=[Optional()],
                     description="A .txt file with one key per line.")
    label = StringField("Label", validators=[Optional(), Length(max=100)],
                        description="Optional, given to every new key (e.g. “team A”).")

    def validate_file(self, field) -> None:
        """Only a text file of sane size; its text is kept for `key_list`."""
        self.file_text = ""
        if not isinstance(field.data, FileStorage) or not field.data.filename:
            return
        raw = field.data.stream.read(MAX_IMPORT_BYTES + 1)
        if len(raw) > MAX_IMPORT_BYTES:
            raise ValidationError("The file is too large: at most 2 MB (about 10,000 keys).")
        try:
            self.file_text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationError("Not a text file: expected UTF-8 text, one key per line.") from None

    def validate(self, extra_validators=None) -> bool:
        if not super().validate(extra_validators):
            return False
        if not (self.keys.data or "").strip() and not getattr(self, "file_text", "").strip():
            self.keys.errors.append("Paste keys or choose a file.")
            return False
        return True

    def key_list(self) -> list[str]:
        return split_keys((self.keys.data or "") + "\n" + getattr(self, "file_text", ""))


class IdsField(Field):
    """Every value of a repeated form field (`ids=3&ids=7`, checkboxes) as key ids, at most 500."""

    def process_formdata(self, valuelist) -> None:
        self.data = []
        if len(valuelist) > 500:
            raise ValueError("At most 500 keys at once (one page).")
        try:
            ids = [int(value) for value in valuelist]
        except ValueError:
            raise ValueError("Not a key id.") from None
        if not all(1 <= key_id <= INTEGER_MAX for key_id in ids):  # past it PostgreSQL refuses to compare
            raise ValueError("Not a key id.")
        self.data = ids


class BulkKeysForm(FlaskForm):
    """Many keys at once: the selected `ids` and what to do with them."""

    ids = IdsField(default=list)
    action = SelectField(choices=[SelectChoice("enable", "Enable"), SelectChoice("disable", "Disable"),
                                  SelectChoice("delete", "Delete"), SelectChoice("label", "Set label")],
                         validators=[InputRequired()])
    label = StringField("New label", validators=[Optional(), Length(max=100)])

    def validate_ids(self, field) -> None:
        if not field.data:
            raise ValidationError("Select at least one key.")


class CheckKeysForm(FlaskForm):
    """Check the selected keys (`scope=selected`) or every pooled key (`scope=all`) in the background."""

    ids = IdsField(default=list)
    scope = SelectField(choices=[SelectChoice("all", "All keys"), SelectChoice("selected", "Selected keys")],
                        validators=[InputRequired()])

    def validate_ids(self, field) -> None:
        if self.scope.data == "selected" and not field.data:
            raise ValidationError("Select at least one key to check.")


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
    key = IntegerField("Key id", validators=[Optional(), NumberRange(1, INTEGER_MAX)])
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


class MintCodesForm(FlaskForm):
    amount = DecimalField("Amount per code (USD)", places=None,
                          validators=[InputRequired(), finite, NumberRange(0.000000001, 1_000_000)],
                          description="What each code adds to the balance of whoever redeems it.")
    count = IntegerField("How many codes", default=1, validators=[InputRequired(), NumberRange(1, 1000)],
                         description="1 to 1,000 in one batch.")
    expires_in_days = IntegerField("Expires after (days)", validators=[Optional(), NumberRange(1, 3650)],
                                   description="Empty: the codes never expire.")
    note = StringField("Note", validators=[Optional(), Length(max=255)],
                       description="What the batch is for, e.g. “workshop 12 May”. Only admins see it.")

    def validate_amount(self, field) -> None:
        """Nine decimals at most: a code is worth a whole number of nano-USD."""
        if field.data is not None and field.data.as_tuple().exponent < -9:
            raise ValidationError("At most nine decimals.")
