"""The image's install steps and command, replayed on the host.

The builder stage's RUN lines install requirements.txt into a fresh virtualenv (pip's
cache makes repeats quick), and the final stage's CMD and HEALTHCHECK are read from the
Dockerfile, so these tests follow the file as it changes.
"""

import secrets
import sqlite3
import subprocess
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet

from tests.deploy.image import Image, ImageProcess, build_image


@pytest.fixture(scope="session")
def image(tmp_path_factory) -> Image:
    """The image built once per test run."""
    return build_image(tmp_path_factory.mktemp("image"))


@pytest.fixture
def production_secrets() -> dict[str, str]:
    """Fresh random secrets of the kind an operator passes with `--env-file`."""
    return {"SECRET_KEY": secrets.token_urlsafe(48), "VAULT_ENCRYPTION_KEY": Fernet.generate_key().decode()}


def test_command_migrates_serves_health_and_stops_on_sigterm(image, production_secrets, tmp_path):
    environ = image.environment(tmp_path, VAULT_BIND="127.0.0.1:0", **production_secrets)
    stale = tmp_path / "metrics" / "counter_1234.db"
    stale.parent.mkdir()
    stale.write_text("left by the previous container")
    with ImageProcess(image, environ) as process:
        base_url, port = process.wait_until_listening()
        health = requests.get(f"{base_url}/healthz", timeout=10)
        assert (health.status_code, health.json()["database"]) == (200, "up"), process.log()
        assert_page_with_assets(base_url, "/login")
        assert run_healthcheck(image, environ | {"VAULT_BIND": f"127.0.0.1:{port}"}).returncode == 0
        assert not stale.exists()
        assert process.terminate() == 0, process.log()
    assert migrated_revision(tmp_path / "data" / "vault.sqlite3")


def test_healthcheck_fails_when_nothing_listens(image, tmp_path):
    result = run_healthcheck(image, image.environment(tmp_path, VAULT_BIND="127.0.0.1:9"))
    assert result.returncode != 0


@pytest.mark.parametrize("secret_key", [None, "change-me"])
def test_command_refuses_production_without_a_real_secret_key(image, production_secrets, tmp_path, secret_key):
    production_secrets.pop("SECRET_KEY")
    if secret_key is not None:
        production_secrets["SECRET_KEY"] = secret_key
    environ = image.environment(tmp_path, VAULT_BIND="127.0.0.1:0", **production_secrets)
    result = subprocess.run(image.command, cwd=image.app, env=environ, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "SECRET_KEY" in output
    assert "Listening at" not in output


def assert_page_with_assets(base_url: str, path: str) -> None:
    """A page renders from the copied templates, and its stylesheet and script are served."""
    page = requests.get(base_url + path, timeout=10)
    assert page.status_code == 200
    for asset in ("/static/css/app.css", "/static/js/app.js"):
        assert asset in page.text
        assert requests.get(base_url + asset, timeout=10).status_code == 200


def run_healthcheck(image: Image, environ: dict[str, str]) -> subprocess.CompletedProcess:
    """The HEALTHCHECK command, as Docker runs it inside the container."""
    return subprocess.run(image.healthcheck, cwd=image.app, env=environ, capture_output=True, text=True, timeout=30)


def migrated_revision(database: Path) -> str | None:
    """The Alembic revision recorded in a SQLite database."""
    with sqlite3.connect(database) as connection:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    return row[0] if row else None
