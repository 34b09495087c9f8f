"""JSON API of a user's Vault keys: `/api-keys/`.

Its routes are listed in `vault/dashboard/__init__.py`; this module loads on the first call to one.
"""

from typing import Annotated

from flask import Response, jsonify
from pydantic import Field

from vault import accounts
from vault.auth.identity import require_user
from vault.extensions import db
from vault.jsonapi import Body, api_key_json, read_body


class NewKeyBody(Body):
    name: Annotated[str, Field(max_length=100)] | None = None


def api_create_key() -> tuple[Response, int]:
    """Mint a key; the response is the only time the full key is shown."""
    user = require_user()
    body = read_body(NewKeyBody, allow_empty=True)
    new_key = accounts.create_api_key(db.session, user, (body.name or "").strip())
    db.session.commit()
    return jsonify(api_key_json(new_key.record) | {"key": new_key.plaintext}), 201


def api_list_keys() -> Response:
    """The caller's keys with usage; never the keys themselves."""
    user = require_user()
    return jsonify([api_key_json(key) for key in accounts.list_api_keys(db.session, user)])


def api_revoke_key(key_id: int) -> tuple[str, int]:
    """Revoke one of the caller's keys; it stops working at once."""
    user = require_user()
    accounts.revoke_api_key(db.session, user, key_id)
    db.session.commit()
    return "", 204
