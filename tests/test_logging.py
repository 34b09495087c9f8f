"""What operators are promised about logs and settings files: JSON lines with request ids, the
level honoured, and `.env` read by gunicorn before it binds."""

import json
import logging
import runpy
import shutil
from pathlib import Path

import pytest

from vault.observability import configure_logging_from_env

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def restored_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


def test_production_logs_are_json_lines_with_the_request_id(app, client, capsys, restored_logging):
    configure_logging_from_env({"VAULT_ENV": "production", "VAULT_LOG_LEVEL": "warning"})

    @app.get("/_log_probe")
    def log_probe():
        logging.getLogger("vault.probe").info("not at this level")
        logging.getLogger("vault.probe").warning("probe line")
        return "ok"

    response = client.get("/_log_probe", headers={"X-Request-Id": "trace-0123456789"})
    assert response.status_code == 200
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert [line["message"] for line in lines] == ["probe line"]
    assert lines[0]["request_id"] == "trace-0123456789" and lines[0]["level"] == "WARNING"


def test_text_logs_when_asked(capsys, restored_logging):
    configure_logging_from_env({"VAULT_ENV": "production", "VAULT_LOG_FORMAT": "text"})
    logging.getLogger("vault.probe").info("plain line")
    assert "INFO vault.probe [] plain line" in capsys.readouterr().err


@pytest.mark.parametrize("environ", [{"VAULT_LOG_FORMAT": "xml"}, {"VAULT_LOG_LEVEL": "LOUD"}])
def test_bad_log_settings_stop_the_start(environ, restored_logging):
    with pytest.raises(SystemExit):
        configure_logging_from_env(environ)


def test_gunicorn_reads_dotenv_before_it_binds(tmp_path, monkeypatch):
    for name in ("VAULT_BIND", "WEB_CONCURRENCY", "PROMETHEUS_MULTIPROC_DIR"):
        monkeypatch.delenv(name, raising=False)
    shutil.copy(PROJECT_ROOT / "gunicorn.conf.py", tmp_path / "gunicorn.conf.py")
    (tmp_path / ".env").write_text("VAULT_BIND=127.0.0.1:8123\nWEB_CONCURRENCY=3\n")
    monkeypatch.chdir(tmp_path)  # the working directory's .env, as README says
    settings = runpy.run_path(str(tmp_path / "gunicorn.conf.py"))
    assert (settings["bind"], settings["workers"]) == ("127.0.0.1:8123", 3)
    monkeypatch.setenv("VAULT_BIND", "127.0.0.1:9000")  # the real environment wins over .env
    assert runpy.run_path(str(tmp_path / "gunicorn.conf.py"))["bind"] == "127.0.0.1:9000"


def test_gunicorn_keeps_idle_connections_for_vault_keepalive_seconds(tmp_path, monkeypatch):
    shutil.copy(PROJECT_ROOT / "gunicorn.conf.py", tmp_path / "gunicorn.conf.py")
    monkeypatch.chdir(tmp_path)  # no project .env in the way
    monkeypatch.delenv("VAULT_KEEPALIVE_SECONDS", raising=False)
    assert runpy.run_path(str(tmp_path / "gunicorn.conf.py"))["keepalive"] == 5
    monkeypatch.setenv("VAULT_KEEPALIVE_SECONDS", "1")
    assert runpy.run_path(str(tmp_path / "gunicorn.conf.py"))["keepalive"] == 1
