"""Fixtures that start real Vault servers on migrated databases."""

import pytest

from tests.e2e.migrated import migrate
from tests.e2e.server import VaultServer, vault_environment


@pytest.fixture
def server_environment(fresh_database_url, tmp_path):
    """The environment of a server whose database has been migrated (as `flask db upgrade` leaves it)."""
    environ = vault_environment(fresh_database_url, tmp_path / "instance")
    migrate(environ)
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
