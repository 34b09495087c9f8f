"""Shared pieces of the JSON API views: validated bodies and the JSON form of records."""

from typing import Annotated, Any, TypeVar

from email_validator import EmailNotValidError, validate_email
from flask import request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from vault.billing.money import nano_to_json
from vault.clock import isoformat
from vault.errors import BadRequest, ValidationFailed
from vault.inbound import parse_json, require_json_type
from vault.inbound import read_body as read_request_body
from vault.models import ApiKey, User

Schema = TypeVar("Schema", bound=BaseModel)


def valid_email(value: str) -> str:
    """The normalised (lower-cased) address, or ValueError saying what is wrong with it."""
    try:
        return validate_email(value, check_deliverability=False, globally_deliverable=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from exc


Email = Annotated[str, Field(max_length=254), AfterValidator(valid_email)]
Password = Annotated[str, Field(min_length=8, max_length=1024)]


class Body(BaseModel):
    """Base for request bodies: exact JSON types, unknown fields ignored."""

    model_config = ConfigDict(strict=True, extra="ignore", str_strip_whitespace=False)


CHANGE_CONFIG = ConfigDict(strict=True, extra="forbid", str_strip_whitespace=False)


class ChangeBody(Body):
    """Base for PATCH and PUT bodies: a field the Vault does not know is refused (400), never
    silently ignored -- the caller would believe a setting was applied."""

    model_config = CHANGE_CONFIG


class NewAccountBody(Body):
    """Registration and admin creation: a valid email and a password of 8+ characters."""

    email: Email
    password: Password


def parse_body(schema: type[Schema], data: Any, strict: bool | None = None) -> Schema:
    """Validate `data` against `schema`, raising `ValidationFailed` with per-field messages.

    `strict=False` converts text (query strings) to the declared types.
    """
    if not isinstance(data, dict):
        raise BadRequest("The request body must be a JSON object.")
    try:
        return schema.model_validate(data, strict=strict)
    except ValidationError as exc:
        fields = {
            ".".join(str(part) for part in error["loc"]) or "body": error["msg"].removeprefix("Value error, ")
            for error in exc.errors(include_url=False)
        }
        raise ValidationFailed(fields=fields) from None


def read_json(allow_empty: bool = False) -> Any:
    """The request's JSON body; 415 unless declared as JSON, `BadRequest` if it is not strict JSON.

    With `allow_empty`, a missing body reads as `{}` (whatever its Content-Type).
    """
    raw = read_request_body(request)
    if not raw.strip():
        if allow_empty:
            return {}
        raise BadRequest("The request body must be a JSON object.")
    require_json_type(request)
    return parse_json(raw)


def read_body(schema: type[Schema], allow_empty: bool = False) -> Schema:
    """Read and validate the request's JSON body against `schema`."""
    return parse_body(schema, read_json(allow_empty))


def user_json(user: User) -> dict[str, Any]:
    """The public form of a user, as the caller or an admin sees it."""
    return {
        "id": user.id,
        "email": user.email,
        "is_active": user.is_active,
        "is_admin": user.is_admin,
        "balance": nano_to_json(user.balance_nano),
        "balance_nano_usd": user.balance_nano,
        "request_count": user.request_count,
        "total_tokens": user.total_tokens,
        "spend": nano_to_json(user.spend_nano),
        "spend_nano_usd": user.spend_nano,
        "created_at": isoformat(user.created_at),
    }


def api_key_json(key: ApiKey) -> dict[str, Any]:
    """The public form of a Vault key: never the key itself."""
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "created_at": isoformat(key.created_at),
        "revoked_at": isoformat(key.revoked_at),
        "last_used_at": isoformat(key.last_used_at),
        "is_active": key.revoked_at is None,
        "request_count": key.request_count,
        "prompt_tokens": key.prompt_tokens,
        "output_tokens": key.output_tokens,
        "total_tokens": key.total_tokens,
        "spend": nano_to_json(key.spend_nano),
        "spend_nano_usd": key.spend_nano,
        "rate_limit_rpm": key.rate_limit_rpm,
    }
