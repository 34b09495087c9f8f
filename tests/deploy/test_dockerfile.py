"""The Dockerfile's promises that hadolint does not check, and what .dockerignore keeps out."""

import pytest

from tests.deploy.dockerfile import exec_form, is_ignored, only, read_ignore_rules, read_stages, stage_environment


@pytest.fixture(scope="module")
def stages():
    """The Dockerfile's build stages, in order."""
    return read_stages()


@pytest.fixture(scope="module")
def final(stages):
    """The stage the image is made of."""
    return stages[-1]


def test_two_stages_on_the_same_pinned_python(stages):
    bases = [stage[0].arguments.split()[0] for stage in stages]
    assert bases == ["python:3.11-slim", "python:3.11-slim"]


def test_final_stage_runs_unprivileged(final):
    user = [instruction.arguments for instruction in final if instruction.keyword == "USER"][-1]
    assert user.split(":")[0] not in {"root", "0"}


def test_final_stage_sets_the_production_environment(final):
    env = stage_environment(final)
    assert env["VAULT_ENV"] == "production"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["VAULT_INSTANCE_PATH"] == "/data"
    assert env["PROMETHEUS_MULTIPROC_DIR"].startswith("/")


def test_serves_on_8000_and_checks_healthz(final):
    assert only(final, "EXPOSE").arguments == "8000"
    assert "/healthz" in " ".join(exec_form(only(final, "HEALTHCHECK")))


def test_command_migrates_before_it_execs_gunicorn(final):
    script = exec_form(only(final, "CMD"))[-1]
    assert script.index("flask --app wsgi db upgrade &&") < script.index("exec gunicorn -c gunicorn.conf.py wsgi:app")


@pytest.mark.parametrize("path", [
    ".env", ".env.production", "instance/secret_key", "instance/vault.sqlite3", ".git/config",
    ".github/workflows/ci.yml", ".venv/bin/python", "node_modules/tailwindcss/package.json",
    "tests/conftest.py", "bench/run.py", "static/src/app.css", "vault/__pycache__/config.cpython-311.pyc",
    "package.json", "README.md", "Dockerfile",
])
def test_dockerignore_keeps_secrets_and_local_state_out(path):
    assert is_ignored(path, read_ignore_rules())


@pytest.mark.parametrize("path", [
    "requirements.txt", "wsgi.py", "gunicorn.conf.py", "vault/__init__.py", "migrations/env.py",
    "templates/base.html", "static/css/app.css",
])
def test_dockerignore_lets_the_app_in(path):
    assert not is_ignored(path, read_ignore_rules())
