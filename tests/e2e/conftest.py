"""Fixtures that start real Vault servers on migrated databases."""

import pytest

from tests.e2e.server import VaultServer, flask_cli, vault_environment


@pytest.fixture
def server_environment(fresh_database_url, tmp_path):
    """The environment of a server whose database has been migrated with `flask db upgrade`."""
    environ = vault_environment(fresh_database_url, tmp_path / "instance")
    upgraded = flask_cli(environ, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    return environ


@pytest.fixture
def start_server():
    """`start_server(environ)`: a running VaultServer, stopped when the test ends."""
    servers: list[VaultServer] = []

    def start(environ: dict[str, str]) -> VaultServer:
        server = VaultServer(environ).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
