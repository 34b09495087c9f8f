"""The data model, one module per concept, re-exported here."""

from vault.models.alert import AlertEvent, AlertSettings
from vault.models.api_key import ApiKey
from vault.models.audit_entry import AuditEntry
from vault.models.billing_version import BillingVersion
from vault.models.gemini_model import GeminiModel
from vault.models.invite import Invite
from vault.models.job import FormSubmission, Job
from vault.models.model_route import ModelAlias, ModelSetting
from vault.models.redemption_code import RedemptionCode
from vault.models.stored_resource import StoredResource, UploadSession
from vault.models.upstream_cooldown import UpstreamCooldown
from vault.models.upstream_key import UpstreamKey, UpstreamKeyState
from vault.models.usage import BalanceAdjustment, KeySpend, ModelPrice, PendingHold, UsageRecord
from vault.models.user import User

__all__ = [
    "AlertEvent", "AlertSettings", "AuditEntry", "FormSubmission", "Job", "RedemptionCode",
    "ApiKey", "BalanceAdjustment", "BillingVersion", "GeminiModel", "Invite", "KeySpend", "ModelAlias",
    "ModelPrice", "ModelSetting", "PendingHold", "StoredResource", "UploadSession", "UpstreamCooldown",
    "UpstreamKey", "UpstreamKeyState", "UsageRecord", "User",
]
