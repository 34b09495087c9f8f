"""A real Gemini-Vault under gunicorn + gevent on a loopback port, for end-to-end tests.

gunicorn binds port 0 and its "Listening at" line says which port it got, so no port is
guessed and no sleep is needed: requests sent before a worker is up simply wait in the
listen queue.
"""

import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LISTENING = re.compile(r"Listening at: (http://127\.0\.0\.1:\d+)")


def vault_environment(database_url: str, instance_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a Vault process under test (nothing inherited that could leak in)."""
    from tests.conftest import TEST_ENCRYPTION_KEY, TEST_SECRET_KEY

    environ = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DATABASE_URL": database_url,
        "VAULT_INSTANCE_PATH": str(instance_path),
        "SECRET_KEY": TEST_SECRET_KEY,
        "VAULT_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "VAULT_BIND": "127.0.0.1:0",
        "WEB_CONCURRENCY": "2",
        "VAULT_KEEPALIVE_SECONDS": "1",  # a stop waits for idle client connections: keep tests' stops short
    }
    return environ | extra


def flask_cli(environ: dict[str, str], *args: str, input_text: str | None = None) -> subprocess.CompletedProcess:
    """Run `flask --app wsgi ARGS` as an operator would."""
    return subprocess.run([str(BIN / "flask"), "--app", "wsgi", *args], env=environ, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120, input=input_text)


class VaultServer:
    """gunicorn running `wsgi:app` with `gunicorn.conf.py`; `base_url` once started."""

    def __init__(self, environ: dict[str, str]):
        self.environ = environ
        self.base_url = ""
        self.log_lines: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._logged = threading.Condition()
        self._process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> "VaultServer":
        # gunicorn keeps a control socket under $XDG_RUNTIME_DIR; one folder per server keeps
        # servers of the same test from sharing it.
        environ = self.environ | {"XDG_RUNTIME_DIR": tempfile.mkdtemp(prefix="vault-gunicorn-")}
        self._process = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"], cwd=PROJECT_ROOT,
            env=environ, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()
        while not self.base_url:
            line = self._lines.get(timeout=timeout)
            if line is None:
                raise RuntimeError("gunicorn exited:\n" + self.log())
            if match := LISTENING.search(line):
                self.base_url = match.group(1)
        return self

    def _pump(self) -> None:
        for line in self._process.stdout:
            with self._logged:
                self.log_lines.append(line)
                self._logged.notify_all()
            self._lines.put(line)
        self._lines.put(None)

    def wait_for_log(self, text: str, timeout: float = 30) -> bool:
        """Wait until the server has printed `text`; False on timeout."""
        with self._logged:
            return self._logged.wait_for(lambda: text in "".join(self.log_lines), timeout)

    def log(self) -> str:
        """Everything gunicorn and the app have printed so far."""
        return "".join(self.log_lines)

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM, then wait for a graceful exit (SIGKILL if it never comes)."""
        if self._process is None or self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
