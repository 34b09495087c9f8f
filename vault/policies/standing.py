"""A key's standing against its limits, as its owner and admins see it (dashboard, JSON API)."""

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vault.billing.money import nano_to_json
from vault.clock import isoformat
from vault.models import ApiKey, UsageRecord
from vault.policies import quota
from vault.policies.rules import Policy, effective_policy, key_settings, period_ends, period_of
from vault.ratelimit import Limiter, per_minute


def policy_of(key: ApiKey) -> Policy:
    """The policy the proxy enforces for `key`: its own settings within its owner's limits."""
    return effective_policy(key_settings(key), key.owner.limits)


def requests_this_minute(session: Session, limiter: Limiter, key_id: int, rpm: int, now: datetime) -> int:
    """Requests counted against the key's per-minute limit (calls finished in the last minute without one)."""
    if rpm > 0:
        return limiter.used(per_minute(rpm), "key", str(key_id))
    records = UsageRecord.__table__
    return int(session.scalar(select(func.count(records.c.id)).where(
        records.c.api_key_id == key_id, records.c.finished_at > now - timedelta(minutes=1))) or 0)


def key_standing(session: Session, limiter: Limiter, key: ApiKey, zone: ZoneInfo, default_rpm: int,
                 now: datetime) -> dict[str, Any]:
    """Where `key` stands now: spend this cap period against its cap, requests and tokens this
    minute against their limits, requests in flight against its concurrency (limits: effective)."""
    policy = policy_of(key)
    period = period_of(policy.spend_cap_period, now, zone) if policy.spend_cap_nano is not None else None
    found = quota.standing(session, key.id, period, now)
    rpm = policy.rate_limit_rpm if policy.rate_limit_rpm is not None else default_rpm
    ends = period_ends(policy.spend_cap_period, now, zone) if period else None
    return {
        "expired": policy.expires_at is not None and policy.expires_at <= now,
        "spend_cap": None if policy.spend_cap_nano is None else nano_to_json(policy.spend_cap_nano),
        "spend_cap_period": policy.spend_cap_period,
        "period": period,
        "period_ends_at": isoformat(ends),
        "spend_this_period": nano_to_json(found.spent_this_period),
        "rate_limit_rpm": rpm or None,
        "requests_this_minute": requests_this_minute(session, limiter, key.id, rpm, now),
        "rate_limit_tpm": policy.rate_limit_tpm,
        "tokens_this_minute": found.tokens_this_minute,
        "max_concurrency": policy.max_concurrency,
        "in_flight": found.in_flight,
        "timezone": zone.key,
    }
