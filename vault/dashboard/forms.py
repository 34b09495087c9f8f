"""Forms of the user's dashboard."""

from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length, Optional


class CreateKeyForm(FlaskForm):
    name = StringField("Key name", validators=[Optional(), Length(max=100)],
                       description="Something to recognise it by, e.g. “laptop” or “ci”.")


class RedeemForm(FlaskForm):
    code = StringField("Redemption code", validators=[DataRequired(), Length(max=128)],
                       description="A top-up code from an admin, e.g. “gvr-…”. Each code works once.")
