"""Operations and schemas of the pool at scale: the paged key list, bulk import and changes, check jobs."""

from pydantic.json_schema import models_json_schema

from vault.admin.api import AddKeysBody, BulkKeysBody, CheckKeysBody
from vault.openapi.paths import USER_WRITE, api, json_body, reply
from vault.openapi.schemas import INT, STR, Schema, array, moment, obj, ref, typed

BODY_NOTES = {
    "AddKeysBody": "Up to 10,000 upstream Gemini keys (and an optional label for the new ones). Keys already "
                   "pooled, or repeated in the list, are counted as duplicates; a deleted key is revived; an invalid "
                   "one is reported with the reason. 400 only when not one key is valid.",
    "BulkKeysBody": "`action` on every key of `ids` (up to 10,000): `enable`, `disable`, `delete` (soft, as "
                    "`DELETE /admin/api/upstream-keys/{key_id}`) or `label` (then `label` is required; empty clears).",
    "CheckKeysBody": "`ids` to check; absent (or no body): every pooled key.",
}
LIST_QUERY = [
    {"name": "q", "in": "query", "required": False, "schema": typed(STR, maxLength=200),
     "description": "Text in the label, the masked key (e.g. its last four characters) or the last error."},
    {"name": "state", "in": "query", "required": False,
     "schema": typed(STR, enum=["active", "cooling", "disabled", "deleted"]),
     "description": "`cooling`: enabled but resting for some model; `active`: enabled and resting for none."},
    {"name": "page", "in": "query", "required": False, "schema": typed(INT, minimum=1, default=1)},
    {"name": "per_page", "in": "query", "required": False, "schema": typed(INT, minimum=1, maximum=500, default=50)},
    {"name": "include_deleted", "in": "query", "required": False, "schema": typed(STR, enum=["0", "1"]),
     "description": "`1` also lists the keys an admin deleted (without `state`)."},
]
RESULT = typed(STR, enum=["ok", "invalid", "rate_limited", "failed", "error", "cooling", "disabled"],
               description="`invalid`: the upstream rejected the key (now disabled); `cooling`/`disabled`: "
                           "not called; `rate_limited`: a 429 (now cooling); `failed`: another failure, counted "
                           "as traffic's would be.")


def pool_page_schemas() -> dict[str, Schema]:
    """The request bodies (from the views' pydantic models) and the answers."""
    _, top = models_json_schema([(model, "validation") for model in (AddKeysBody, BulkKeysBody, CheckKeysBody)],
                                ref_template="#/components/schemas/{model}")
    schemas = top["$defs"]
    for name, note in BODY_NOTES.items():
        schemas[name]["description"] = note
    ids = array(typed(INT))
    return schemas | {
        "UpstreamKeyPage": obj({"upstream_keys": array(ref("UpstreamKey")), "total": typed(INT),
                                "page": typed(INT), "per_page": typed(INT)}),
        "UpstreamKeyImport": obj({
            "added": typed(INT), "duplicates": typed(INT), "invalid_count": typed(INT),
            "invalid": array(obj({"key": typed(STR, description="Masked."), "reason": typed(STR)})),
            "upstream_keys": array(ref("UpstreamKeyAdded"), description="The keys added, then the duplicates.")}),
        "UpstreamKeyBulk": obj({"action": typed(STR), "changed": ids, "unchanged": ids,
                                "missing": array(typed(INT), description="Ids of no pooled key.")}),
        "JobStarted": obj({"id": typed(STR), "state": typed(STR), "done": typed(INT), "total": typed(INT)}),
        "Job": obj({
            "id": typed(STR), "kind": typed(STR), "state": typed(STR, enum=["queued", "running", "done", "failed"]),
            "done": typed(INT), "total": typed(INT), "error": typed(STR, nullable=True),
            "counts": obj({}, additionalProperties=typed(INT), description="Items by result."),
            "created_at": moment(), "started_at": moment(nullable=True), "finished_at": moment(nullable=True),
            "results": array(obj({"id": typed(INT), "key": typed(STR), "result": RESULT, "detail": typed(STR)}),
                             description="Once the job has ended, or with `?results=1`.")}),
    }


def pool_page_paths() -> dict[str, Schema]:
    """`/admin/api/upstream-keys` (list, import), `/bulk`, `/check` and `/admin/api/jobs/{job_id}`."""
    return {
        "/admin/api/upstream-keys": {
            "get": api("listUpstreamKeys", "A page of the upstream key pool with health", "admin",
                       (200, reply("The page and how many keys match.", ref("UpstreamKeyPage"))), 400, 401, 403,
                       parameters=LIST_QUERY),
            "post": api("addUpstreamKeys", "Import upstream keys (thousands at once)", "admin",
                        (201, reply("What was added, the duplicates and the invalid keys.", ref("UpstreamKeyImport"))),
                        400, 401, 403, 413, 415, requestBody=json_body(AddKeysBody), security=USER_WRITE),
        },
        "/admin/api/upstream-keys/bulk": {"post": api(
            "bulkUpstreamKeys", "Enable, disable, delete or relabel many upstream keys", "admin",
            (200, reply("Which keys changed.", ref("UpstreamKeyBulk"))), 400, 401, 403, 413, 415,
            requestBody=json_body(BulkKeysBody), security=USER_WRITE)},
        "/admin/api/upstream-keys/check": {"post": api(
            "checkUpstreamKeys", "Check upstream keys in the background", "admin",
            (202, reply("The job to poll.", ref("JobStarted"))), 400, 401, 403, 413, 415,
            requestBody=json_body(CheckKeysBody, required=False), security=USER_WRITE,
            description="One cheap upstream call per key (as the pool page's Check button), at most "
                        "`VAULT_KEY_CHECK_CONCURRENCY` at once; the outcome lands in each key's health as "
                        "traffic's would (a rejected key is disabled). Keys disabled or cooling are not called. "
                        "One check runs at a time: while one is queued or running, that job is the answer and "
                        "nothing new is started.")},
        "/admin/api/jobs/{job_id}": {"get": api(
            "showJob", "A background job's progress", "admin", (200, reply("The job.", ref("Job"))), 401, 403, 404,
            parameters=[{"name": "results", "in": "query", "required": False, "schema": typed(STR, enum=["0", "1"]),
                         "description": "`1`: the results so far, while it runs."}],
            description="A job whose worker stopped (no heartbeat for a minute) reads as `failed`.")},
    }
