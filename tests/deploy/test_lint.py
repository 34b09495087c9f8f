"""The deployment files pass their linters: hadolint, actionlint and the Compose schema.

The linters come from requirements-dev.txt as binaries inside PyPI wheels. Where one is
missing the test is skipped on a developer's machine but fails in CI, so a broken install
can never pass for a clean file.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.dockerfile import PROJECT_ROOT

WORKFLOWS = sorted((PROJECT_ROOT / ".github" / "workflows").glob("*.yml"))


def linter(name: str) -> str:
    """The linter's executable, looked up next to this interpreter first."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    if found := shutil.which(name, path=search):
        return found
    message = f"{name} is not installed (pip install -r requirements-dev.txt)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def assert_clean(*command: str) -> None:
    """Run a linter from the project root; its own report is the failure message."""
    result = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout}{result.stderr}"


def test_dockerfile_passes_hadolint():
    assert_clean(linter("hadolint"), "--no-color", "Dockerfile")


def test_workflows_pass_actionlint():
    assert {"ci.yml", "docker.yml"} <= {path.name for path in WORKFLOWS}
    # shellcheck and pyflakes are used only when installed: off, so every machine agrees.
    assert_clean(linter("actionlint"), "-no-color", "-shellcheck=", "-pyflakes=", *map(str, WORKFLOWS))


def test_compose_file_matches_the_compose_spec():
    assert_clean(linter("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", "docker-compose.yml")
