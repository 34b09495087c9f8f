"""Admin JSON API for the audit trail: `GET /admin/api/audit`, read-only by design.

There is no route to change or delete an entry (and the model refuses to). Its route is listed
in `vault/admin/__init__.py`; this module loads on the first call to it.
"""

from datetime import datetime
from typing import Annotated

from flask import Response, jsonify, request
from pydantic import Field

from vault import audit
from vault.errors import ValidationFailed
from vault.extensions import db
from vault.inbound import INTEGER_MAX, whole_number
from vault.jsonapi import Body, parse_body, utc_moment


class AuditQuery(Body):
    actor: Annotated[str, Field(max_length=254)] = ""
    action: Annotated[str, Field(max_length=64)] = ""
    since: datetime | None = None
    until: datetime | None = None
    page: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    per_page: Annotated[int, Field(ge=1, le=500)] = 50


def read_audit_query() -> AuditQuery:
    """The filters from the query string; an unreadable time or number is a 400 naming the field."""
    raw = {name: value for name, value in request.args.items() if value.strip() != ""}
    query = parse_body(AuditQuery, raw, strict=False)
    query.since, query.until = utc_moment(query.since, "since"), utc_moment(query.until, "until")
    actor = query.actor.strip()
    if actor.isdigit() and whole_number(actor, INTEGER_MAX) is None:
        raise ValidationFailed(fields={"actor": "an email or a user id"})
    return query


def list_audit() -> Response:
    """Entries, newest first: by actor (email or id), action (a prefix: `pool.` is every pool action)
    and time (`since` inclusive, `until` exclusive)."""
    query = read_audit_query()
    entries, total = audit.search(db.session, query.actor.strip(), query.action.strip(), query.since, query.until,
                                  query.page, query.per_page)
    return jsonify({"entries": [audit.entry_json(entry) for entry in entries], "total": total, "page": query.page,
                    "per_page": query.per_page})
