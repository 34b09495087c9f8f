"""The image, replayed on the host: the builder's venv, the final stage's files, its command.

`build_image(root)` runs the builder stage's COPY and RUN steps in a scratch folder with a
fresh virtualenv standing in for /opt/venv, then lays out the files the final stage
copies, filtered by .dockerignore. The final stage's own RUN (a system user, folder
owners) needs root and is not replayed; `Image.environment()` points its folders at
scratch paths instead. `ImageProcess` runs the image's CMD and stops it again.
"""

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from tests.deploy.dockerfile import (
    PROJECT_ROOT,
    Instruction,
    exec_form,
    is_ignored,
    only,
    read_ignore_rules,
    read_stages,
    stage_environment,
)

LISTENING = re.compile(r"Listening at: (http://127\.0\.0\.1:(\d+))")
# Image variables that name paths inside the image; the replay gives each a scratch path.
HOST_PATHS = ("VIRTUAL_ENV", "PATH", "VAULT_INSTANCE_PATH", "PROMETHEUS_MULTIPROC_DIR")


@dataclass(frozen=True)
class Image:
    """A replayed image: its venv, its /app, the ENV it sets, its CMD and HEALTHCHECK."""

    venv: Path
    app: Path
    env: dict[str, str]
    command: list[str]
    healthcheck: list[str]

    def environment(self, scratch: Path, **extra: str) -> dict[str, str]:
        """The image's ENV with its paths moved under `scratch`; nothing inherited from the tests."""
        fixed = {name: value for name, value in self.env.items() if name not in HOST_PATHS}
        return fixed | {
            "HOME": str(scratch / "home"),
            "VIRTUAL_ENV": str(self.venv),
            "PATH": f"{self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "VAULT_INSTANCE_PATH": str(scratch / "data"),
            "PROMETHEUS_MULTIPROC_DIR": str(scratch / "metrics"),
        } | extra


def build_image(root: Path) -> Image:
    """Replay both stages of the Dockerfile under `root`."""
    builder, final = read_stages()
    venv = root / "venv"
    run_builder(builder, root / "build", venv)
    copy_stage_files(final, root / "app")
    env = stage_environment(final)
    missing = [name for name in HOST_PATHS if name not in env]
    assert not missing, f"the final stage no longer sets {missing}"
    return Image(venv, root / "app", env, exec_form(only(final, "CMD")), exec_form(only(final, "HEALTHCHECK")))


def run_builder(stage: list[Instruction], workdir: Path, venv: Path) -> None:
    """COPY and RUN in order, as the builder would, with `venv` as its VIRTUAL_ENV."""
    workdir.mkdir(parents=True)
    # `python` must resolve to a 3.11 before the venv exists: the interpreter running the tests.
    path = f"{venv / 'bin'}:{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    environ = os.environ | {"VIRTUAL_ENV": str(venv), "PATH": path}
    for instruction in stage:
        if instruction.keyword == "COPY":
            copy_from_context(instruction, workdir)
        elif instruction.keyword == "RUN":
            result = subprocess.run(["sh", "-c", instruction.body()], cwd=workdir, env=environ,
                                    capture_output=True, text=True, timeout=600)
            assert result.returncode == 0, f"RUN {instruction.body()}\n{result.stdout}{result.stderr}"


def copy_stage_files(stage: list[Instruction], workdir: Path) -> None:
    """The stage's COPYs from the build context (those `--from` another stage are skipped)."""
    workdir.mkdir(parents=True)
    for instruction in stage:
        if instruction.keyword == "COPY" and "from" not in instruction.flags():
            copy_from_context(instruction, workdir)


def copy_from_context(instruction: Instruction, workdir: Path) -> None:
    """One COPY: each source (a file, or a folder's contents) into the destination under `workdir`."""
    *sources, destination = instruction.body().split()
    rules = read_ignore_rules()
    for source in sources:
        assert not is_ignored(source, rules), f"COPY {source}: left out of the context by .dockerignore"
        origin = PROJECT_ROOT / source
        if origin.is_dir():
            copy_folder(origin, workdir / destination, rules)
        else:
            (workdir / destination).mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, workdir / destination / origin.name)


def copy_folder(origin: Path, target: Path, rules: list[tuple[str, bool]]) -> None:
    """The files under `origin` that the build context would hold."""
    for path in origin.rglob("*"):
        relative = path.relative_to(PROJECT_ROOT).as_posix()
        if path.is_file() and not is_ignored(relative, rules):
            copy = target / path.relative_to(origin)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, copy)


class ImageProcess:
    """The image's command as a process group of its own; a context manager that stops it."""

    def __init__(self, image: Image, environ: dict[str, str]):
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._process = subprocess.Popen(image.command, cwd=image.app, env=environ, text=True,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        threading.Thread(target=self._pump, daemon=True).start()

    def __enter__(self) -> "ImageProcess":
        return self

    def __exit__(self, *exc_info) -> None:
        if self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()

    def _pump(self) -> None:
        for line in self._process.stdout:
            self.lines.append(line)
            self._queue.put(line)
        self._queue.put(None)

    def log(self) -> str:
        """Everything printed so far, stdout and stderr interleaved."""
        return "".join(self.lines)

    def wait_until_listening(self, timeout: float = 90) -> tuple[str, int]:
        """gunicorn's base URL and port, once it says it is listening."""
        while True:
            line = self._queue.get(timeout=timeout)
            if line is None:
                raise AssertionError("the image's command exited before listening:\n" + self.log())
            if match := LISTENING.search(line):
                return match.group(1), int(match.group(2))

    def terminate(self, timeout: float = 40) -> int:
        """SIGTERM, as `docker stop` sends it, and the exit code once the process is gone."""
        self._process.send_signal(signal.SIGTERM)
        return self._process.wait(timeout=timeout)
