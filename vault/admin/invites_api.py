"""Admin JSON API for invites: `/admin/api/invites` (the role is checked once, in the blueprint).

An invite's code is shown once, in the answer that creates it; only its hash is stored. Its
routes are listed in `vault/admin/__init__.py`; this module loads on the first call to one.
"""

from datetime import datetime
from typing import Annotated, Any

from flask import Response, jsonify
from pydantic import Field

from vault import accounts
from vault.admin import auditing
from vault.admin.views import invite_url
from vault.auth.identity import require_user
from vault.clock import isoformat, utcnow
from vault.errors import ValidationFailed
from vault.extensions import db
from vault.jsonapi import Body, read_body, utc_moment
from vault.models import Invite


class NewInviteBody(Body):
    note: Annotated[str, Field(max_length=255)] = ""
    expires_at: Annotated[datetime, Field(strict=False)] | None = None


def invite_json(invite: Invite, now: datetime) -> dict[str, Any]:
    """The public form of an invite: never its code."""
    return {
        "id": invite.id,
        "prefix": invite.prefix,
        "note": invite.note,
        "state": invite.state(now),
        "created_by": invite.created_by,
        "created_at": isoformat(invite.created_at),
        "expires_at": isoformat(invite.expires_at),
        "used_by": invite.used_by,
        "used_at": isoformat(invite.used_at),
    }


def future_moment(moment: datetime | None, now: datetime) -> datetime | None:
    """`moment` in UTC (naive is read as UTC); `ValidationFailed` unless it is after `now` and UTC can hold it."""
    moment = utc_moment(moment, "expires_at")
    if moment is not None and moment <= now:
        raise ValidationFailed(fields={"expires_at": "must be in the future"})
    return moment


def list_invites() -> Response:
    """Every invite, newest first, with its state; never the codes."""
    now = utcnow()
    return jsonify([invite_json(invite, now) for invite in accounts.list_invites(db.session)])


def create_invite() -> tuple[Response, int]:
    """Mint a single-use invite `{note?, expires_at?}`; the code and link are shown this once."""
    body = read_body(NewInviteBody, allow_empty=True)
    now = utcnow()
    new = accounts.create_invite(db.session, require_user(), body.note, future_moment(body.expires_at, now))
    auditing.audit_invite_created(new.record)
    db.session.commit()
    return jsonify(invite_json(new.record, now) | {"code": new.code, "url": invite_url(new.code)}), 201


def revoke_invite(invite_id: int) -> tuple[str, int]:
    """Revoke an unused invite; a used one stays on record (409)."""
    auditing.revoke_invite(invite_id)
    db.session.commit()
    return "", 204
