"""A gunicorn worker loads only what serving needs: what the CLI or the JSON API alone use stays out.

Each worker pays in memory for every module it imports. The worker's view is taken in a fresh
interpreter that imports `wsgi` as gunicorn's gevent worker does (standard library patched
first, `sys.argv[0]` naming gunicorn), so an import added at the top of a module is caught.
"""

import json
import os
import subprocess
import sys
from importlib import import_module
from pathlib import Path

import pytest

from tests.conftest import app_config
from vault import create_app, lazy_view

ROOT = Path(__file__).resolve().parent.parent
WORKER = """
import json, sys
sys.argv[0] = {argv0!r}
from gevent import monkey
monkey.patch_all()
import wsgi
print(json.dumps({{"modules": sorted(sys.modules), "commands": sorted(wsgi.app.cli.commands)}}))
"""
# `flask db` (Flask-Migrate, Alembic and its Mako templates) and the operator commands never run
# in a worker; PyJWT loads with the first API call that brings a token.
NOT_AT_START = ["flask_migrate", "alembic", "mako", "vault.cli", "jwt",
                "redis", "vault.pool.shared"]  # no REDIS_URL here: Redis is not used
# Loaded on the first JSON API call (see vault.add_lazy_routes), the API reference or an admin's bootstrap.
API_ONLY = ["pydantic", "email_validator", "vault.jsonapi", "vault.openapi", "vault.auth.api", "vault.dashboard.api",
            "vault.admin.api", "vault.admin.billing_api", "vault.admin.invites_api"]
SERVING = ["sqlalchemy", "vault.proxy.forwarding", "vault.runtime", "vault.auth.views", "vault.admin.views"]


def load_wsgi(tmp_path: Path, argv0: str) -> dict:
    """The modules and CLI commands of a fresh process that imported `wsgi` with `argv0`."""
    environ = {
        "PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "VAULT_INSTANCE_PATH": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'vault.sqlite3'}",
    }
    # The working folder is tmp_path so that a developer's .env is not read.
    done = subprocess.run([sys.executable, "-c", WORKER.format(argv0=argv0)], cwd=tmp_path, env=environ,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def worker(tmp_path_factory) -> dict:
    return load_wsgi(tmp_path_factory.mktemp("worker"), "/srv/venv/bin/gunicorn")


@pytest.mark.parametrize("module", SERVING)
def test_the_worker_loads_what_serving_needs(worker, module):
    assert module in worker["modules"]


@pytest.mark.parametrize("module", NOT_AT_START)
def test_the_worker_starts_without(worker, module):
    assert module not in worker["modules"]


@pytest.mark.parametrize("module", API_ONLY)
def test_the_worker_starts_without_the_json_api(worker, module):
    assert module not in worker["modules"]


def test_the_worker_has_no_cli_commands(worker):
    assert worker["commands"] == []


def test_the_flask_cli_has_migrations_and_the_operator_commands(tmp_path):
    commands = load_wsgi(tmp_path, "/srv/venv/bin/flask")["commands"]
    assert {"db", "create-admin", "upstream", "billing"} <= set(commands)


def test_every_lazy_route_names_a_view_of_its_module(tmp_path):
    app = create_app(app_config(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'vault.sqlite3'}"), environ={})
    lazy_code = lazy_view("module", "name").__code__
    lazy = {endpoint: view for endpoint, view in app.view_functions.items()
            if getattr(view, "__code__", None) is lazy_code}
    assert lazy
    for endpoint, view in lazy.items():
        target = getattr(import_module(view.__module__), view.__name__, None)
        assert callable(target) and target.__code__ is not lazy_code, endpoint
