"""The proxy's door with the Flask test client: who gets in, and errors in the right dialect."""

import pytest

from vault.accounts import set_user_active
from vault.extensions import db
from vault.models import User

GENERATE = "/v1beta/models/gemini-2.5-flash:generateContent"
CHAT = "/v1/chat/completions"


@pytest.fixture
def vault_key(make_user, make_api_key):
    return make_api_key(make_user()).plaintext


def test_inactive_user_is_refused_in_each_dialect(client, vault_key, db_snapshot):
    user = db.session.scalar(db.select(User))
    set_user_active(db.session, user, False)
    db.session.commit()
    before = db_snapshot()
    native = client.post(GENERATE, json={}, headers={"x-goog-api-key": vault_key})
    openai = client.post(CHAT, json={}, headers={"Authorization": f"Bearer {vault_key}"})
    assert native.status_code == openai.status_code == 403
    assert native.get_json()["error"]["status"] == "PERMISSION_DENIED"
    assert openai.get_json()["error"]["type"] == "permission_error"
    assert db_snapshot() == before


def test_no_upstream_key_configured_is_503(client, vault_key):
    response = client.post(GENERATE, json={}, headers={"x-goog-api-key": vault_key})
    assert response.status_code == 503
    assert response.get_json()["error"] == {"code": 503, "message": "No upstream key is configured or enabled.",
                                            "status": "UNAVAILABLE"}


@pytest.mark.parametrize(("method", "path", "status", "dialect"), [
    ("get", CHAT, 405, "openai"),
    ("get", "/v1beta/tunedModels", 404, "google"),
    ("delete", GENERATE, 405, "google"),
    ("get", "/no/such/page", 404, "html"),
])
def test_routing_errors_use_the_callers_dialect(client, method, path, status, dialect):
    response = getattr(client, method)(path)
    assert response.status_code == status
    if dialect == "html":
        assert response.mimetype == "text/html" and b"Not found" in response.data
    elif dialect == "google":
        assert response.get_json()["error"]["code"] == status
    else:
        assert response.get_json()["error"]["type"] == "invalid_request_error"


def test_vault_key_is_never_echoed(client):
    secret = "gv-" + "s" * 43
    response = client.post(GENERATE, json={}, headers={"x-goog-api-key": secret})
    assert response.status_code == 401 and secret not in response.get_data(as_text=True)
