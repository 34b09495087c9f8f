"""The README's encryption-key rotation, run as an operator would: real restarts and `flask` commands."""

import requests
from cryptography.fernet import Fernet

from tests.e2e.server import VaultServer, flask_cli, vault_environment
from tests.fake_gemini import FakeGemini

PROMPT = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
ADMIN = {"email": "root@example.com", "password": "admin password"}


def restart(environ: dict) -> VaultServer:
    """Start the Vault and wait for its worker to be up (its start-up has added GEMINI_API_KEYS)."""
    server = VaultServer(environ | {"WEB_CONCURRENCY": "1"}).start()
    requests.get(f"{server.base_url}/healthz", timeout=30).raise_for_status()
    return server


def test_rotating_the_encryption_key_as_the_readme_says(tmp_path):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with FakeGemini() as fake:
        keys = [fake.new_key() for _ in range(3)]
        environ = vault_environment(f"sqlite:///{tmp_path / 'vault.sqlite3'}", tmp_path / "instance") | {
            "GEMINI_BASE_URL": fake.base_url, "GEMINI_API_KEYS": ",".join(keys), "VAULT_ENCRYPTION_KEY": old,
            "VAULT_ADMIN_EMAIL": ADMIN["email"], "VAULT_ADMIN_PASSWORD": ADMIN["password"],
        }
        assert flask_cli(environ, "db", "upgrade").returncode == 0
        server = restart(environ)
        token = requests.post(f"{server.base_url}/auth/token", json=ADMIN, timeout=30).json()["access_token"]
        admin = {"Authorization": f"Bearer {token}"}
        pool = requests.get(f"{server.base_url}/admin/api/upstream-keys", headers=admin,
                            timeout=10).json()["upstream_keys"]
        deleted = next(key["id"] for key in pool if key["key"].endswith(keys[2][-4:]))
        assert requests.delete(f"{server.base_url}/admin/api/upstream-keys/{deleted}", headers=admin,
                               timeout=10).status_code == 204
        server.stop()
        listed = flask_cli(environ, "upstream", "list", "--include-deleted").stdout

        environ["VAULT_ENCRYPTION_KEY"] = f"{new},{old}"  # 1. the new key first, restart
        restart(environ).stop()
        assert flask_cli(environ, "upstream", "list", "--include-deleted").stdout == listed

        reencrypted = flask_cli(environ, "upstream", "reencrypt")  # 2.
        assert reencrypted.returncode == 0 and "Re-encrypted 2 key(s)" in reencrypted.stdout, reencrypted

        environ |= {"VAULT_ENCRYPTION_KEY": new, "VAULT_FINGERPRINT_KEY": old}  # 3. drop the old key, restart
        server = restart(environ)
        try:
            assert flask_cli(environ, "upstream", "list", "--include-deleted").stdout == listed, "nothing added twice"
            account = {"email": "ada@example.com", "password": "long enough"}
            requests.post(f"{server.base_url}/auth/users/", json=account, timeout=30).raise_for_status()
            user = requests.post(f"{server.base_url}/auth/token", json=account, timeout=30).json()["access_token"]
            vault_key = requests.post(f"{server.base_url}/api-keys/", json={}, timeout=30,
                                      headers={"Authorization": f"Bearer {user}"}).json()["key"]
            fake.reset()
            for _ in range(4):
                requests.post(f"{server.base_url}/v1beta/models/gemini-2.5-flash:generateContent", json=PROMPT,
                              headers={"x-goog-api-key": vault_key}, timeout=30).raise_for_status()
            assert {call.key for call in fake.calls} == set(keys[:2]), "both keys decrypt; the deleted one stays out"
        finally:
            server.stop()
