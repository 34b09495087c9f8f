"""The image built for real by podman from the Dockerfile, and its command run from the built root.

See tests/deploy/container.py for how: a debootstrapped stand-in for `python:3.11-slim`,
`podman build --isolation chroot`, then the image's CMD and HEALTHCHECK run in a mounted
container's root with `chroot --userspec`, as the image's user and with its ENV.

Needs root, the machine's Debian mirror, and podman + debootstrap (installed with apt-get
when missing). Where that cannot be had the tests are skipped with the reason; with
TEST_REQUIRE_IMAGE_BUILD set (.ci/run sets it) they fail instead. The first run makes the
base (about a minute and a half); later runs reuse it and podman's layer cache.
"""

import os
import secrets
import sqlite3
import time

import pytest
import requests
from cryptography.fernet import Fernet

from tests.deploy.container import (
    ImageConfig,
    RootProcess,
    Unavailable,
    build_image,
    check_machine,
    debian_mirror,
    ensure_base_image,
    free_port,
    inspect,
    mounted_container,
    run_in_root,
)

pytestmark = pytest.mark.image

DATABASE_URL = "sqlite:////data/vault.sqlite3"


@pytest.fixture(scope="module")
def image() -> ImageConfig:
    """The project's image, built once per test run."""
    mirror = debian_mirror()
    try:
        check_machine(mirror)
    except Unavailable as reason:
        message = f"the image cannot be built here: {reason}"
        if os.environ.get("TEST_REQUIRE_IMAGE_BUILD"):
            pytest.fail(message)
        pytest.skip(message)
    started = time.monotonic()
    base = ensure_base_image(mirror)
    based = time.monotonic()
    image_id = build_image()
    print(f"\nimage: base {base} in {based - started:.1f} s, built in {time.monotonic() - based:.1f} s")
    return inspect(image_id)


@pytest.fixture
def root(image):
    """The root of a fresh container of the image, removed after the test."""
    with mounted_container(image) as path:
        yield path


@pytest.fixture
def production_secrets() -> dict[str, str]:
    return {"SECRET_KEY": secrets.token_urlsafe(48), "VAULT_ENCRYPTION_KEY": Fernet.generate_key().decode()}


def test_image_runs_as_uid_10001_in_production_with_a_healthcheck(image):
    assert image.user == "10001:10001"
    assert image.env["VAULT_ENV"] == "production"
    assert image.env["PATH"].startswith("/opt/venv/bin:")
    assert image.command[:2] == ["sh", "-c"] and "gunicorn" in image.command[-1]
    assert image.healthcheck and "/healthz" in image.healthcheck[-1]


def test_production_start_refuses_without_a_secret_key(image, root, production_secrets):
    production_secrets.pop("SECRET_KEY")
    code, output = run_in_root(image, root, image.command, VAULT_BIND=f"127.0.0.1:{free_port()}",
                               DATABASE_URL=DATABASE_URL, **production_secrets)
    assert code != 0, output
    assert "SECRET_KEY must be set" in output
    assert "Listening at" not in output


def test_command_migrates_and_serves_healthz_as_uid_10001(image, root, production_secrets):
    port = free_port()
    stale = root / image.env["PROMETHEUS_MULTIPROC_DIR"].lstrip("/") / "counter_1234.db"
    stale.write_text("left by the previous container")
    environ = {"VAULT_BIND": f"127.0.0.1:{port}", "DATABASE_URL": DATABASE_URL, **production_secrets}
    with RootProcess(image, root, image.command, **environ) as process:
        base_url, master = process.wait_until_listening()
        assert base_url == f"http://127.0.0.1:{port}"
        health = requests.get(f"{base_url}/healthz", timeout=10)
        assert (health.status_code, health.json()["database"]) == (200, "up"), process.log()
        login = requests.get(f"{base_url}/login", timeout=10)
        assert login.status_code == 200 and "/static/css/app.css" in login.text
        assert requests.get(f"{base_url}/static/css/app.css", timeout=10).status_code == 200

        code, output = run_in_root(image, root, image.healthcheck, **environ)
        assert code == 0, output

        workers = process.worker_pids()
        assert workers, process.log()
        for pid in (master, *workers):
            assert ids(pid, "Uid") == ids(pid, "Gid") == ["10001"] * 4, f"pid {pid}"
        assert not stale.exists()

        os.kill(master, 15)
        assert process.wait(timeout=60) == 0, process.log()
    database = root / "data" / "vault.sqlite3"
    assert database.stat().st_uid == 10001
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchone()


def test_healthcheck_fails_when_nothing_listens(image, root):
    code, _ = run_in_root(image, root, image.healthcheck, VAULT_BIND=f"127.0.0.1:{free_port()}")
    assert code != 0


def ids(pid: int, field: str) -> list[str]:
    """The real, effective, saved and filesystem ids of a process, from /proc/<pid>/status."""
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith(f"{field}:"))
    return line.split()[1:]
