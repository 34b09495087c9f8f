"""Forms of the account pages (CSRF-protected by Flask-WTF)."""

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional, ValidationError

LENGTH = "Use at least 8 characters (and at most 1024)."


def email_address(_form, field) -> None:
    """The same email rules as the JSON API."""
    from vault.jsonapi import valid_email  # here, not at the top: jsonapi brings pydantic (see add_lazy_routes)

    try:
        field.data = valid_email(field.data or "")
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


class RegisterForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254), email_address])
    password = PasswordField("Password", validators=[DataRequired(), Length(min=8, max=1024, message=LENGTH)])
    confirm = PasswordField("Repeat password", validators=[DataRequired(), EqualTo("password", "Passwords differ.")])
    invite_code = StringField("Invite code", validators=[Optional(), Length(max=200)],
                              filters=[lambda value: value.strip() if value else value])


class LoginForm(FlaskForm):
    email = StringField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])
    remember = BooleanField("Keep me signed in")


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[DataRequired(), Length(max=1024)])
    new_password = PasswordField("New password", validators=[DataRequired(), Length(min=8, max=1024, message=LENGTH)])
    confirm = PasswordField("Repeat new password",
                            validators=[DataRequired(), EqualTo("new_password", "Passwords differ.")])
