"""Operations and schemas of the audit trail API (`GET /admin/api/audit`): read-only, by design."""

from vault.admin.audit_api import AuditQuery
from vault.openapi.paths import api, query_parameters, reply
from vault.openapi.schemas import INT, STR, Schema, array, moment, obj, ref, typed

FILTER_NOTES = {
    "actor": "The admin who acted: an email or a user id.",
    "action": "An action name, or its start: `pool.` matches every pool action.",
    "since": "ISO 8601 time, inclusive (naive: UTC).",
    "until": "ISO 8601 time, exclusive (naive: UTC).",
}
SIDE = "The fields the action changed, as they were {when} (secrets never appear); null when {none}."


def audit_schemas() -> dict[str, Schema]:
    """An entry and a page of them."""
    return {
        "AuditEntry": obj({
            "id": typed(INT),
            "at": moment(),
            "actor": typed(STR, nullable=True, description="The admin's email; null for the operator's CLI."),
            "actor_id": typed(INT, nullable=True, description="The admin's user id (null: CLI, or a deleted user)."),
            "action": typed(STR, description="What was done: `user.update`, `user.balance`, `user.limits`, "
                                             "`api_key.policy`, `price.put`, `price.delete`, `pool.update`, "
                                             "`pool.delete`, `alias.put`, `alias.delete`, `model.settings`, "
                                             "`invite.create`, `invite.revoke`, …"),
            "target": typed(STR, description="What it was done to, as `kind:id` (`user:12`, `price:gemini-2.5-pro`)."),
            "before": typed("object", nullable=True, description=SIDE.format(when="before", none="it was created")),
            "after": typed("object", nullable=True, description=SIDE.format(when="after", none="it was removed")),
            "ip": typed(STR, nullable=True, description="The address the action came from; `cli` for the CLI."),
        }),
        "AuditPage": obj({"entries": array(ref("AuditEntry")), "total": typed(INT), "page": typed(INT),
                          "per_page": typed(INT)}),
    }


def audit_paths() -> dict[str, Schema]:
    """`GET /admin/api/audit`: there is no operation that changes or deletes an entry."""
    parameters = [parameter | ({"description": FILTER_NOTES[parameter["name"]]}
                               if parameter["name"] in FILTER_NOTES else {})
                  for parameter in query_parameters(AuditQuery)]
    return {"/admin/api/audit": {"get": api(
        "listAudit", "Admin actions, newest first, filtered (entries cannot be changed or deleted)", "admin",
        (200, reply("A page of entries.", ref("AuditPage"))), 400, 401, 403, parameters=parameters)}}
