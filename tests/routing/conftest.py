"""Fixtures of the routing tests: an admin, and a caller in front of the fake upstream."""

from types import SimpleNamespace

import pytest


@pytest.fixture
def admin_headers(make_user, auth_headers):
    return auth_headers(make_user(email="root@example.com", is_admin=True))


@pytest.fixture
def caller(proxied_key):
    key = proxied_key("100.00")
    return SimpleNamespace(user_id=key.record.user_id, key=key.plaintext,
                           native={"x-goog-api-key": key.plaintext},
                           openai={"Authorization": f"Bearer {key.plaintext}"})


@pytest.fixture
def route(client, admin_headers):
    """`route.alias(name, target, defaults=None)`, `route.model(name, hidden=False, fallback=None)`."""
    def alias(name: str, target: str, defaults: dict | None = None) -> None:
        body = {"target": target} | ({"defaults": defaults} if defaults is not None else {})
        response = client.put(f"/admin/api/model-aliases/{name}", json=body, headers=admin_headers)
        assert response.status_code == 200, response.get_json()

    def model(name: str, hidden: bool = False, fallback: list[str] | None = None) -> None:
        response = client.put(f"/admin/api/models/{name}", json={"hidden": hidden, "fallback": fallback},
                              headers=admin_headers)
        assert response.status_code == 200, response.get_json()

    return SimpleNamespace(alias=alias, model=model)
