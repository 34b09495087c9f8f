"""The data model, one module per concept, re-exported here."""

from vault.models.api_key import ApiKey
from vault.models.invite import Invite
from vault.models.upstream_cooldown import UpstreamCooldown
from vault.models.upstream_key import UpstreamKey, UpstreamKeyState
from vault.models.usage import BalanceAdjustment, ModelPrice, UsageRecord
from vault.models.user import User

__all__ = ["ApiKey", "BalanceAdjustment", "Invite", "ModelPrice", "UpstreamCooldown", "UpstreamKey",
           "UpstreamKeyState", "UsageRecord", "User"]
