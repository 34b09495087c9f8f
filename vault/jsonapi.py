"""Shared pieces of the JSON API views: validated bodies and the JSON form of records."""

from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from email_validator import EmailNotValidError, validate_email
from flask import current_app, request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from vault.billing.money import nano_to_json
from vault.clock import isoformat
from vault.errors import BadRequest, ValidationFailed
from vault.extensions import db
from vault.inbound import parse_json, require_json_type
from vault.inbound import read_body as read_request_body
from vault.models import ApiKey, User
from vault.policies.rules import Policy, key_settings
from vault.policies.settings import policy_json, user_limits_json
from vault.policies.standing import key_standing, policy_of
from vault.runtime import runtime

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


def utc_moment(moment: datetime | None, field: str) -> datetime | None:
    """`moment` in UTC (a naive one is read as UTC); `ValidationFailed` naming `field` when UTC falls
    outside the calendar (`9999-12-31T23:00:00-05:00` is in the year 10000 there)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValidationFailed(fields={field: "must fall between the years 1 and 9999 in UTC"}) from None


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
        "limits": user_limits_json(user),
        "low_balance_threshold": None if user.low_balance_threshold_nano is None
        else nano_to_json(user.low_balance_threshold_nano),
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
    } | policy_json(key_settings(key))


def effective_json(policy: Policy, default_rpm: int) -> dict[str, Any]:
    """The limits the proxy enforces for a key: its own within its owner's (`vault.policies.rules`).

    Model patterns and CIDRs are lists of lists: a call must pass one entry of every list.
    """
    rpm = policy.rate_limit_rpm if policy.rate_limit_rpm is not None else default_rpm
    return {
        "expires_at": isoformat(policy.expires_at),
        "allowed_models": [list(rule.globs) for rule in policy.model_rules if rule.policy == "allowed_models"],
        "visible_models": next((list(rule.globs) for rule in policy.model_rules
                                if rule.policy == "visible_models"), None),
        "allowed_ips": [[str(network) for network in networks] for networks in policy.ip_rules],
        "spend_cap": None if policy.spend_cap_nano is None else nano_to_json(policy.spend_cap_nano),
        "spend_cap_period": policy.spend_cap_period,
        "rate_limit_rpm": rpm or None,
        "rate_limit_tpm": policy.rate_limit_tpm,
        "max_concurrency": policy.max_concurrency,
    }


def api_key_report_json(key: ApiKey, now: datetime) -> dict[str, Any]:
    """A key with its effective limits and where it stands against them now."""
    vault = runtime()
    zone = current_app.config["VAULT_SPEND_CAP_TIMEZONE"]
    return api_key_json(key) | {
        "effective": effective_json(policy_of(key), vault.default_rpm),
        "standing": key_standing(db.session, vault.limiter, key, zone, vault.default_rpm, now),
    }
