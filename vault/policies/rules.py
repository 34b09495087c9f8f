"""The effective policy of a Vault key: its own settings tightened by its owner's limits.

A key's settings and a user's limits share one vocabulary (`POLICY_FIELDS`). Where the key
sets nothing, the user's value applies (a default); where both set one, the tighter wins (a
ceiling), so lowering a user's limit lowers every key at once. Model globs and CIDR lists
are not merged but all apply: a call must pass the key's list and the user's.
"""

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any
from zoneinfo import ZoneInfo

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
PERIODS = ("day", "week", "month")
LIFETIME = "life"
# A Vault key's policy columns (`vault.models.ApiKey`); a user's limits use the same names.
KEY_COLUMNS = ("expires_at", "allowed_models", "spend_cap_nano", "spend_cap_period", "rate_limit_rpm",
               "rate_limit_tpm", "max_concurrency", "allowed_ips")


@dataclass(frozen=True)
class ModelRule:
    """Globs a model name must match, and the policy that set them (named when it refuses)."""

    policy: str  # "allowed_models" or "visible_models"
    globs: tuple[str, ...]

    def allows(self, names: tuple[str, ...]) -> bool:
        return any(fnmatchcase(name, glob) for name in names for glob in self.globs)


@dataclass(frozen=True)
class Policy:
    """Everything the proxy enforces for one key (plain values: cached per process, safe in a stream).

    `rate_limit_rpm` None means the global default and 0 no limit; the other limits are
    None for no limit. `spend_cap_period` None with a cap means over the key's whole life.
    """

    expires_at: datetime | None = None
    model_rules: tuple[ModelRule, ...] = ()
    ip_rules: tuple[tuple[IPNetwork, ...], ...] = ()
    spend_cap_nano: int | None = None
    spend_cap_period: str | None = None
    rate_limit_rpm: int | None = None
    rate_limit_tpm: int | None = None
    max_concurrency: int | None = None

    @property
    def in_hold(self) -> bool:
        """Whether the hold must check this key's spend, tokens or concurrency (the slower path)."""
        return (self.spend_cap_nano is not None or self.rate_limit_tpm is not None
                or self.max_concurrency is not None)

    def allows_model(self, names: tuple[str, ...]) -> ModelRule | None:
        """The first rule none of `names` (the name called and what it routes to) passes, or None."""
        for rule in self.model_rules:
            if not rule.allows(names):
                return rule
        return None

    def allows_address(self, address: str) -> bool:
        """Whether `address` (the client's, as trusted proxies report it) is inside every CIDR list."""
        if not self.ip_rules:
            return True
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            return False
        if parsed.version == 6 and parsed.ipv4_mapped is not None:
            parsed = parsed.ipv4_mapped
        return all(any(parsed in network for network in networks) for networks in self.ip_rules)


NO_POLICY = Policy()


def networks(cidrs: list[str] | None) -> tuple[IPNetwork, ...] | None:
    """Stored CIDR text as networks (None: no list)."""
    if cidrs is None:
        return None
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def key_settings(key: Any) -> dict[str, Any]:
    """A key's own policy columns (of an `ApiKey`), in stored form."""
    return {name: getattr(key, name) for name in KEY_COLUMNS}


def tighter(own: int | None, ceiling: int | None, zero_is_unlimited: bool = False) -> int | None:
    """The stricter of a key's limit and its owner's (None: not set)."""
    if own is None:
        return ceiling
    if ceiling is None or (zero_is_unlimited and ceiling == 0):
        return own
    if zero_is_unlimited and own == 0:
        return ceiling
    return min(own, ceiling)


def effective_policy(key: dict, limits: dict | None) -> Policy:
    """The policy of a key whose columns are `key` (a mapping of `POLICY_COLUMNS`) owned by a
    user whose `limits` are given (stored JSON, None: no limits)."""
    limits = limits or {}
    rules = []
    if key.get("allowed_models") is not None:
        rules.append(ModelRule("allowed_models", tuple(key["allowed_models"])))
    if limits.get("allowed_models") is not None:
        rules.append(ModelRule("allowed_models", tuple(limits["allowed_models"])))
    if limits.get("visible_models") is not None:
        rules.append(ModelRule("visible_models", tuple(limits["visible_models"])))
    ips = tuple(found for found in (networks(key.get("allowed_ips")), networks(limits.get("allowed_ips")))
                if found is not None)
    cap, period = key.get("spend_cap_nano"), key.get("spend_cap_period")
    user_cap = limits.get("spend_cap_nano")
    if cap is None:
        cap, period = user_cap, limits.get("spend_cap_period")
    elif user_cap is not None:
        cap = min(cap, user_cap)
        if period not in (None, limits.get("spend_cap_period")):
            # the owner's cap is per another period (set after the key's): it binds the key
            period = limits.get("spend_cap_period")
    return Policy(expires_at=key.get("expires_at"), model_rules=tuple(rules), ip_rules=ips, spend_cap_nano=cap,
                  spend_cap_period=period if cap is not None else None,
                  rate_limit_rpm=tighter(key.get("rate_limit_rpm"), limits.get("rate_limit_rpm"), True),
                  rate_limit_tpm=tighter(key.get("rate_limit_tpm"), limits.get("rate_limit_tpm")),
                  max_concurrency=tighter(key.get("max_concurrency"), limits.get("max_concurrency")))


def period_of(period: str | None, now: datetime, zone: ZoneInfo) -> str:
    """The name of the cap period `now` falls in (`day:2026-11-27`, `week:2026-W48`,
    `month:2026-11`; `life` without a period), with days starting at midnight in `zone`."""
    if period is None:
        return LIFETIME
    local = now.astimezone(zone)
    if period == "day":
        return f"day:{local:%Y-%m-%d}"
    if period == "week":
        year, week, _ = local.isocalendar()
        return f"week:{year}-W{week:02d}"
    return f"month:{local:%Y-%m}"


def period_ends(period: str | None, now: datetime, zone: ZoneInfo) -> datetime | None:
    """When the cap period `now` falls in ends (UTC), or None for a lifetime cap."""
    if period is None:
        return None
    local = now.astimezone(zone)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        end = start + timedelta(days=1)
    elif period == "week":
        end = start + timedelta(days=7 - local.weekday())
    else:
        end = (start.replace(day=1) + timedelta(days=32)).replace(day=1)
    # Re-localise: a day across a DST change is not 24 hours.
    end = end.replace(tzinfo=None).replace(tzinfo=zone)
    return end.astimezone(UTC)
