"""Changing a key's policy or a user's limits, with the escalation rules.

The JSON API and the pages send the same fields (`PolicyFields`): `expires_at`,
`allowed_models`, `spend_cap` (USD), `spend_cap_period`, `rate_limit_rpm`,
`rate_limit_tpm`, `max_concurrency`, `allowed_ips`. A field left out keeps its value;
null clears it. A key can never be given more than its owner has: every limit must be
within the user's (`Forbidden`, naming it), whoever sets it; an owner setting a key's
requests per minute is also held to the global default when the user has no limit.
"""

import ipaddress
import re
from datetime import UTC, datetime
from decimal import Decimal
from fnmatch import fnmatchcase
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from vault.billing.money import nano_to_json, usd_to_nano
from vault.clock import isoformat
from vault.errors import Forbidden
from vault.models import ApiKey, User
from vault.policies.rules import KEY_COLUMNS, key_settings
from vault.templating import usd

GLOB = re.compile(r"[A-Za-z0-9._*?-]{1,128}")
MAX_ENTRIES = 100


def valid_globs(globs: list[str]) -> list[str]:
    """Model globs: letters, digits, `. _ -` and the wildcards `*` `?` (`models/` is dropped)."""
    cleaned = []
    for glob in globs:
        glob = glob.strip().removeprefix("models/")
        if not GLOB.fullmatch(glob):
            raise ValueError(f"{glob[:40]!r} is not a model pattern (letters, digits, . _ - and the wildcards * ?)")
        cleaned.append(glob)
    return list(dict.fromkeys(cleaned))


def valid_cidrs(cidrs: list[str]) -> list[str]:
    """CIDRs (or single addresses), stored in their network form (`10.0.0.7/8` → `10.0.0.0/8`)."""
    cleaned = []
    for cidr in cidrs:
        try:
            cleaned.append(str(ipaddress.ip_network(cidr.strip(), strict=False)))
        except ValueError:
            raise ValueError(f"{cidr[:50]!r} is not an IP address or CIDR block") from None
    return list(dict.fromkeys(cleaned))


def iso_text(value: Any) -> Any:
    """Times come as ISO 8601 text (lax parsing would also read a number as a Unix time)."""
    if not isinstance(value, str | datetime):
        raise ValueError("expected an ISO 8601 date and time, e.g. 2030-01-31T18:00:00Z")
    return value


def aware(moment: datetime) -> datetime:
    """A time without a zone is read as UTC."""
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("must fall between the years 1 and 9999 in UTC") from None


Globs = Annotated[list[str], Field(max_length=MAX_ENTRIES), AfterValidator(valid_globs)]
Cidrs = Annotated[list[str], Field(max_length=MAX_ENTRIES), AfterValidator(valid_cidrs)]
SpendCap = Annotated[Decimal, Field(strict=False, ge=0, le=1_000_000, decimal_places=9, allow_inf_nan=False)]
Period = Literal["day", "week", "month"]
Count = Annotated[int, Field(ge=1, le=1_000_000_000)]


class LimitFields(BaseModel):
    """The limits a user's keys share (a user's ceilings, or one key's own)."""

    model_config = ConfigDict(strict=True, extra="forbid")

    allowed_models: Globs | None = None
    spend_cap: SpendCap | None = None
    spend_cap_period: Period | None = None
    rate_limit_rpm: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    rate_limit_tpm: Count | None = None
    max_concurrency: Annotated[int, Field(ge=1, le=100_000)] | None = None
    allowed_ips: Cidrs | None = None


class PolicyFields(LimitFields):
    """A Vault key's policy as the JSON API takes it."""

    expires_at: Annotated[datetime, BeforeValidator(iso_text), Field(strict=False), AfterValidator(aware)] | None = None


class UserLimitFields(LimitFields):
    """A user's limits as the admin JSON API takes them: the keys' ceilings and defaults,
    plus the models the user may see at all."""

    visible_models: Globs | None = None


STORED = {"spend_cap": "spend_cap_nano"}  # JSON field → stored name, where they differ


def stored_changes(fields: BaseModel) -> dict[str, Any]:
    """The fields the caller sent, in stored form (USD → nano-USD)."""
    changes = {}
    for name in fields.model_fields_set:
        value = getattr(fields, name)
        if name == "spend_cap" and value is not None:
            value = usd_to_nano(value)
        changes[STORED.get(name, name)] = value
    return changes


def refuse_escalation(key: dict, limits: dict | None, default_rpm: int | None) -> None:
    """`Forbidden` if the key's settings `key` (stored form) give more than `limits` allow.

    `default_rpm` is the owner's ceiling for requests per minute when the user has none (the
    global default, for owners); None for admins, who may lift a key above it.
    """
    limits = limits or {}
    cap, ceiling = key.get("spend_cap_nano"), limits.get("spend_cap_nano")
    if cap is not None and ceiling is not None:
        if cap > ceiling:
            raise Forbidden(f"spend_cap: at most {usd(ceiling)} is allowed for this account's keys.")
        if key.get("spend_cap_period") not in (None, limits.get("spend_cap_period")):
            raise Forbidden(f"spend_cap_period: this account's cap is per {limits.get('spend_cap_period') or 'life'}; "
                            "a key's cap may be per the same period or over its whole life.")
    rpm_ceiling = limits.get("rate_limit_rpm")
    if rpm_ceiling is None and default_rpm:
        rpm_ceiling = default_rpm
    rpm = key.get("rate_limit_rpm")
    if rpm is not None and rpm_ceiling and (rpm == 0 or rpm > rpm_ceiling):
        raise Forbidden(f"rate_limit_rpm: at most {rpm_ceiling} requests per minute is allowed for this key.")
    for name, unit in (("rate_limit_tpm", "tokens per minute"), ("max_concurrency", "concurrent requests")):
        value, most = key.get(name), limits.get(name)
        if value is not None and most is not None and value > most:
            raise Forbidden(f"{name}: at most {most} {unit} is allowed for this account's keys.")
    models, allowed = key.get("allowed_models"), limits.get("allowed_models")
    for glob in models or ():
        if allowed is not None and not any(fnmatchcase(glob, outer) for outer in allowed):
            raise Forbidden(f"allowed_models: {glob!r} is outside the models this account may use.")
    nets, outer_nets = key.get("allowed_ips"), limits.get("allowed_ips")
    for cidr in nets or ():
        inner = ipaddress.ip_network(cidr)
        if outer_nets is not None and not any(inner.version == outer.version and inner.subnet_of(outer)
                                              for outer in map(ipaddress.ip_network, outer_nets)):
            raise Forbidden(f"allowed_ips: {cidr} is outside the addresses this account may call from.")


def change_key_policy(key: ApiKey, fields: PolicyFields, default_rpm: int | None) -> None:
    """Apply the sent fields to `key`, refusing anything above its owner's limits."""
    settings = key_settings(key) | stored_changes(fields)
    refuse_escalation(settings, key.owner.limits, default_rpm)
    for name, value in settings.items():
        setattr(key, name, value)


def change_user_limits(user: User, fields: UserLimitFields) -> None:
    """Apply the sent fields to `user.limits`. Lowering them lowers every key at once (the tighter
    value wins at the door); a key's own spend cap above the new one, or per another period, is
    brought within it here, since a cap is counted in its own period."""
    limits = dict(user.limits or {}) | stored_changes(fields)
    user.limits = {name: value for name, value in limits.items() if value is not None} or None
    ceiling, period = (user.limits or {}).get("spend_cap_nano"), (user.limits or {}).get("spend_cap_period")
    for key in user.api_keys:
        if ceiling is None or key.spend_cap_nano is None:
            continue
        key.spend_cap_nano = min(key.spend_cap_nano, ceiling)
        if key.spend_cap_period not in (None, period):
            key.spend_cap_period = period


def policy_json(settings: dict[str, Any]) -> dict[str, Any]:
    """Stored policy values (a key's columns or a user's limits) as the JSON API shows them."""
    shown = {}
    for name, value in settings.items():
        if name == "spend_cap_nano":
            shown["spend_cap"] = None if value is None else nano_to_json(value)
        elif name == "expires_at":
            shown[name] = isoformat(value)
        else:
            shown[name] = value
    return shown


def user_limits_json(user: User) -> dict[str, Any]:
    """A user's limits, every field present (null: not set)."""
    names = [*(name for name in KEY_COLUMNS if name != "expires_at"), "visible_models"]
    limits = user.limits or {}
    return policy_json({name: limits.get(name) for name in names})
