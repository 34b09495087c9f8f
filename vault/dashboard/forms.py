"""Forms of the user's dashboard."""

from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import Length, Optional


class CreateKeyForm(FlaskForm):
    name = StringField("Key name", validators=[Optional(), Length(max=100)],
                       description="Something to recognise it by, e.g. “laptop” or “ci”.")
