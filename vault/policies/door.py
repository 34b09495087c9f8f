"""The checks a key's policy makes before a call is read or held: expiry, client address, model.

Each refusal names the policy that refused, in the message (`expires_at: …`) and in the
`X-Vault-Policy` header, and is rendered in the caller's dialect like every other error.
"""

from datetime import datetime
from zoneinfo import ZoneInfo

from vault.clock import isoformat
from vault.errors import Forbidden, policy_header
from vault.policies.quota import Quota
from vault.policies.rules import Policy, period_of

PERIOD_LABELS = {"day": "per day", "week": "per week", "month": "per month", None: "over the key's life"}


def refused(policy: str, message: str) -> Forbidden:
    return Forbidden(f"{policy}: {message}", headers=policy_header(policy))


def check_door(policy: Policy, now: datetime, address: str) -> None:
    """`Forbidden` (403) if the key has expired or `address` is outside its CIDRs."""
    if policy.expires_at is not None and policy.expires_at <= now:
        raise refused("expires_at", f"this key expired at {isoformat(policy.expires_at)}.")
    if not policy.allows_address(address):
        raise refused("allowed_ips", f"this key may not be used from {address or 'an unknown address'}.")


def check_model(policy: Policy, names: tuple[str, ...]) -> None:
    """`Forbidden` (403) unless the model called (`names`: as called, and what it routes to)
    passes every model list of the key and its owner."""
    names = tuple(name.removeprefix("models/") for name in names if name)
    if not names:
        return
    rule = policy.allows_model(names)
    if rule is not None:
        whose = "this account" if rule.policy == "visible_models" else "this key"
        raise refused(rule.policy, f"{whose} may not use the model {names[0]!r}.")


def quota_for(api_key_id: int, policy: Policy, now: datetime, zone: ZoneInfo) -> Quota | None:
    """What the hold must check for this key (None: no cap, token or concurrency limit)."""
    if not policy.in_hold:
        return None
    period = None
    if policy.spend_cap_nano is not None:
        period = period_of(policy.spend_cap_period, now, zone)
    return Quota(api_key_id, policy.spend_cap_nano, period, PERIOD_LABELS.get(policy.spend_cap_period, ""),
                 policy.rate_limit_tpm, policy.max_concurrency)
