"""The real thing: gunicorn + gevent serving the accounts and keys API over loopback."""

from concurrent.futures import ThreadPoolExecutor

import requests

from tests.e2e.server import flask_cli


def test_accounts_and_keys_over_http(server_environment, start_server):
    server = start_server(server_environment | {"VAULT_ADMIN_EMAIL": "root@example.com",
                                                "VAULT_ADMIN_PASSWORD": "admin password"})
    base = server.base_url
    created = requests.post(f"{base}/auth/users/", json={"email": "ada@example.com", "password": "long enough"},
                            timeout=10)
    assert created.status_code == 201
    token = requests.post(f"{base}/auth/token", data={"username": "ada@example.com", "password": "long enough"},
                          timeout=10).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    key = requests.post(f"{base}/api-keys/", json={"name": "ci"}, headers=headers, timeout=10).json()
    listed = requests.get(f"{base}/api-keys/", headers=headers, timeout=10).json()
    assert [entry["prefix"] for entry in listed] == [key["prefix"]]
    assert requests.delete(f"{base}/api-keys/{key['id']}", headers=headers, timeout=10).status_code == 204
    admin = requests.post(f"{base}/auth/token", json={"email": "root@example.com", "password": "admin password"},
                          timeout=10)
    assert admin.status_code == 200
    assert "Using worker: gevent" in server.log()


def test_concurrent_registrations_and_logins(server_environment, start_server):
    # 24 sign-ups from one address: more than VAULT_SIGNUP_PER_HOUR allows by default.
    base = start_server(server_environment | {"VAULT_SIGNUP_PER_HOUR": "0"}).base_url

    def register_and_login(n: int) -> tuple[int, int]:
        body = {"email": f"user{n}@example.com", "password": "long enough"}
        created = requests.post(f"{base}/auth/users/", json=body, timeout=30)
        token = requests.post(f"{base}/auth/token", json=body, timeout=30)
        return created.status_code, token.status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(register_and_login, range(24)))
    assert results == [(201, 200)] * 24
    duplicate = requests.post(f"{base}/auth/users/", json={"email": "USER0@example.com", "password": "long enough"},
                              timeout=10)
    assert duplicate.status_code == 409


def test_restarting_with_bootstrap_variables_is_idempotent(server_environment, start_server):
    environ = server_environment | {"VAULT_ADMIN_EMAIL": "root@example.com", "VAULT_ADMIN_PASSWORD": "admin password",
                                    "GEMINI_API_KEYS": "AIzaSyA-first-upstream-key-0000000000001,"
                                                       "AIzaSyB-second-upstream-key-000000000002"}
    for _ in range(2):
        server = start_server(environ)
        assert requests.get(f"{server.base_url}/healthz", timeout=10).json()["database"] == "up"
        server.stop()
    listing = flask_cli(environ, "upstream", "list")
    assert listing.stdout.count("active") == 2
    assert "AIzaSyA-first-upstream-key-0000000000001" not in listing.stdout + listing.stderr
    assert "0000000000001" not in server.log()
