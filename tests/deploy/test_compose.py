"""docker-compose.yml: the Vault waits for a healthy PostgreSQL and Redis, data lives in
named volumes, and every secret comes from the environment, never from the file."""

import re

import pytest
from ruamel.yaml import YAML

from tests.deploy.dockerfile import PROJECT_ROOT

REQUIRED_VARIABLE = re.compile(r"^\$\{[A-Z][A-Z0-9_]*:\?[^}]+\}$")
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|_KEY")
URL_PASSWORD = re.compile(r"://[^:/@]+:([^@]+)@")


@pytest.fixture(scope="module")
def compose() -> dict:
    """docker-compose.yml as data (YAML 1.2, as Compose reads it)."""
    return YAML(typ="safe", pure=True).load(PROJECT_ROOT / "docker-compose.yml")


@pytest.fixture(scope="module")
def services(compose) -> dict:
    """The `services` mapping, by name."""
    return compose["services"]


def test_vault_is_built_from_this_folder_and_published_on_8000(services):
    assert services["vault"]["build"] == "."
    assert "8000:8000" in services["vault"]["ports"]


def test_vault_starts_after_database_and_redis_are_healthy(services):
    depends_on = services["vault"]["depends_on"]
    assert {name: rule["condition"] for name, rule in depends_on.items()} == {
        "db": "service_healthy",
        "redis": "service_healthy",
    }


@pytest.mark.parametrize(("service", "image", "probe"), [("db", "postgres:16", "pg_isready"),
                                                         ("redis", "redis:7", "redis-cli")])
def test_dependencies_are_pinned_and_health_checked(services, service, image, probe):
    assert services[service]["image"] == image
    assert probe in " ".join(services[service]["healthcheck"]["test"])


def test_vault_reaches_its_dependencies_by_service_name(services):
    environment = services["vault"]["environment"]
    assert "@db:5432/" in environment["DATABASE_URL"]
    assert environment["REDIS_URL"].startswith("redis://redis:6379/")
    assert environment["VAULT_ENV"] == "production"


@pytest.mark.parametrize(("service", "volume", "target"), [("db", "postgres-data", "/var/lib/postgresql/data"),
                                                           ("vault", "vault-data", "/data")])
def test_state_lives_in_named_volumes(compose, service, volume, target):
    assert f"{volume}:{target}" in compose["services"][service]["volumes"]
    assert volume in compose["volumes"]


def test_no_secret_is_written_in_the_file(services):
    for name, service in services.items():
        for variable, value in (service.get("environment") or {}).items():
            value = str(value)
            if SECRET_NAME.search(variable):
                assert REQUIRED_VARIABLE.match(value), f"{name}.{variable} must be a required ${{VAR:?…}}"
            if password := URL_PASSWORD.search(value):
                assert REQUIRED_VARIABLE.match(password.group(1)), f"{name}.{variable} holds a password"


def test_the_secret_check_catches_literals():
    assert not REQUIRED_VARIABLE.match("hunter2")
    assert not REQUIRED_VARIABLE.match("${SECRET_KEY:-dev-default}")
    assert URL_PASSWORD.search("postgresql://vault:vault@db:5432/vault").group(1) == "vault"
