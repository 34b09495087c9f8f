"""Operations and schemas of alerts: `/admin/api/alerts`, its webhook and settings."""

from pydantic.json_schema import models_json_schema

from vault.admin.alerts_api import AlertSettingsBody, WebhookBody
from vault.openapi.paths import USER_WRITE, api, json_body, reply
from vault.openapi.schemas import BOOL, INT, STR, Schema, array, moment, obj, ref, typed

BODY_NOTES = {
    "WebhookBody": "`url` http(s) (null removes the webhook), `secret` 16 to 512 characters: deliveries carry "
                   "`X-GV-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, \"<t>.\" + body)>`. Both are "
                   "stored encrypted and only shown masked.",
    "AlertSettingsBody": "`min_usable_keys`: a `pool_low` alert when fewer keys are usable (null: off); "
                         "`email_to`: also email each alert (needs `VAULT_SMTP_HOST`; null: off).",
}
KIND = typed(STR, enum=["low_balance", "pool_low", "key_disabled"])


def alert_schemas() -> dict[str, Schema]:
    """The request bodies (from the views' pydantic models) and the answers."""
    _, top = models_json_schema([(model, "validation") for model in (WebhookBody, AlertSettingsBody)],
                                ref_template="#/components/schemas/{model}")
    schemas = top["$defs"]
    for name, note in BODY_NOTES.items():
        schemas[name].setdefault("description", note)
    settings = {
        "webhook": {"anyOf": [obj({"url": typed(STR, description="Scheme and host; the rest masked."),
                                   "secret": typed(STR, description="Masked.")}), {"type": "null"}]},
        "min_usable_keys": typed(INT, nullable=True), "email_to": typed(STR, nullable=True),
        "email_enabled": typed(BOOL, description="Whether `VAULT_SMTP_HOST` is set."),
    }
    event = obj({
        "id": typed(INT), "type": KIND, "created_at": moment(),
        "payload": typed("object", description="Exactly the JSON body the webhook receives."),
        "state": typed(STR, enum=["pending", "sending", "delivered", "failed", "none"],
                       description="`none`: no webhook was set when it was raised."),
        "attempts": typed(INT), "next_attempt_at": moment(nullable=True), "last_status": typed(INT, nullable=True),
        "last_error": typed(STR, nullable=True), "delivered_at": moment(nullable=True),
        "email_state": typed(STR, nullable=True, enum=["pending", "sending", "sent", "failed", None]),
    }, description="An alert and how its delivery went.")
    return schemas | {"AlertSettings": obj(settings), "AlertEvent": event,
                      "Alerts": obj(settings | {"events": array(ref("AlertEvent"))})}


def alert_paths() -> dict[str, Schema]:
    """`/admin/api/alerts…`."""
    settings = reply("The alert settings (masked).", ref("AlertSettings"))
    return {
        "/admin/api/alerts": {"get": api(
            "showAlerts", "Alert settings and the newest alerts with their delivery state", "admin",
            (200, reply("Settings and events, newest first.", ref("Alerts"))), 400, 401, 403,
            parameters=[
                {"name": "type", "in": "query", "required": False, "schema": KIND},
                {"name": "limit", "in": "query", "required": False,
                 "schema": typed(INT, minimum=1, maximum=200, default=50)}])},
        "/admin/api/alerts/webhook": {"put": api(
            "putAlertWebhook", "Set or remove the alert webhook", "admin", (200, settings), 400, 401, 403, 413,
            requestBody=json_body(WebhookBody), security=USER_WRITE)},
        "/admin/api/alerts/settings": {"put": api(
            "putAlertSettings", "Set the pool threshold and the alert email address", "admin", (200, settings),
            400, 401, 403, 413, requestBody=json_body(AlertSettingsBody), security=USER_WRITE)},
    }
