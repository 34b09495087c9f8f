"""Child processes of the benchmark: started pinned, each in its own process group, always stopped.

Every child leads a new session (`start_new_session=True`), so it and everything it forks
(gunicorn's workers) form one process group that is stopped as a whole, and a Ctrl-C in the
terminal reaches only the harness, which then stops its children in order. Load runs are
bounded in time too (`run_bounded`). CPU time and memory of a gateway are read from /proc for
its whole process tree (master + workers).
"""

import os
import re
import resource
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SUT_CPUS = os.environ.get("SUT_CPUS", "1")
LOAD_CPUS = os.environ.get("LOAD_CPUS", "0")


class BenchError(RuntimeError):
    """Something the benchmark needs is missing or did not start; the message says what."""


def tool(name: str, hint: str) -> str:
    """The absolute path of a command-line tool, or a BenchError telling how to install it."""
    path = shutil.which(name)
    if not path:
        raise BenchError(f"`{name}` is missing: {hint}")
    return path


def pinned(cpus: str, argv: list[str]) -> list[str]:
    """`argv` run on the CPUs `cpus` only (taskset's list syntax: "1", "0,2", "2-3")."""
    return [tool("taskset", "apt-get install -y util-linux"), "-c", cpus, *argv]


def raise_open_files(wanted: int) -> int:
    """Raise this process's RLIMIT_NOFILE (children inherit it); returns the soft limit now in force.

    The hard limit is raised too when the harness may (root); otherwise the soft limit goes
    as high as the hard one allows.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, max(wanted, hard)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@dataclass
class Service:
    """A long-running child (fake upstream, gateway) with its log file."""

    name: str
    process: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 30) -> str:
        """The end of the child's log, to show why it failed."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL it after `grace` seconds, and reap the leader."""
        _signal_group(self.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _signal_group(self.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        _signal_group(self.pid, signal.SIGKILL)  # stragglers the leader left behind


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass
class Services:
    """Every long-running child of the harness; leaving the `with` block stops them all."""

    workdir: Path
    running: list[Service] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> Service:
        """Start `argv` in its own process group, output to `<workdir>/<name>.log`."""
        log_path = self.workdir / f"{name}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        service = Service(name, process, log_path)
        self.running.append(service)
        return service

    def stop(self, service: Service) -> None:
        """Stop one child now."""
        if service in self.running:
            self.running.remove(service)
        service.stop()

    def __enter__(self) -> "Services":
        return self

    def __exit__(self, *_exc) -> None:
        while self.running:
            self.running.pop().stop()


def run_bounded(argv: list[str], env: dict[str, str], timeout: float, cwd: Path | None = None) -> str:
    """Run a short-lived child to completion within `timeout` seconds; its stdout.

    The child gets its own process group, which is killed if the time runs out or the
    harness is interrupted.
    """
    process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except BaseException:
        _signal_group(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        raise
    if process.returncode != 0:
        raise BenchError(f"{Path(argv[0]).name} exited with {process.returncode}: {(stderr or stdout)[-1500:]}")
    return stdout


def wait_for_log_line(service: Service, pattern: str, timeout: float) -> re.Match:
    """Wait until the child logs a line matching `pattern` (e.g. the address it listens at)."""
    regex, deadline = re.compile(pattern), time.monotonic() + timeout
    while time.monotonic() < deadline:
        if match := regex.search(service.log_path.read_text(errors="replace")):
            return match
        if service.process.poll() is not None:
            raise BenchError(f"{service.name} exited with {service.process.returncode}:\n{service.log_tail()}")
        time.sleep(0.1)
    raise BenchError(f"{service.name} did not log /{pattern}/ within {timeout:.0f} s:\n{service.log_tail()}")


def wait_http(url: str, service: Service, timeout: float = 60) -> None:
    """Wait until GET `url` answers below 500 (the process is up and its dependencies answer)."""
    deadline, last = time.monotonic() + timeout, "no answer"
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise BenchError(f"{service.name} exited with {service.process.returncode}:\n{service.log_tail()}")
        try:
            status = requests.get(url, timeout=5).status_code
        except requests.RequestException as exc:
            status, last = None, str(exc)
        if status is not None and status < 500:
            return
        last = f"HTTP {status}" if status else last
        time.sleep(0.2)
    raise BenchError(f"{service.name} not ready at {url} ({last}):\n{service.log_tail()}")


def _parent_of(pid: str) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rfind(")") + 2:].split()[1])


def tree_pids(root: int) -> list[int]:
    """`root` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                children.setdefault(_parent_of(entry), []).append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def tree_usage(root: int) -> tuple[int, float]:
    """(resident bytes, user + system CPU seconds) summed over `root`'s process tree."""
    rss, cpu = 0, 0.0
    for pid in tree_pids(root):
        try:
            rss += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_BYTES
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rfind(")") + 2:].split()
            cpu += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        except (OSError, ValueError, IndexError):
            continue  # a process that just ended
    return rss, cpu


@dataclass
class Usage:
    """What a gateway's process tree used during a measured block."""

    cpu_seconds: float = 0.0
    peak_rss_bytes: int = 0


@contextmanager
def measured(root: int | None, interval: float = 0.2) -> Iterator[Usage]:
    """CPU seconds used by `root`'s tree inside the block, and its peak RSS sampled meanwhile.

    `root` None (the direct target: no gateway) measures nothing.
    """
    usage = Usage()
    if root is None:
        yield usage
        return
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            usage.peak_rss_bytes = max(usage.peak_rss_bytes, tree_usage(root)[0])
            stop.wait(interval)

    cpu_before = tree_usage(root)[1]
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield usage
    finally:
        stop.set()
        sampler.join()
        usage.cpu_seconds = tree_usage(root)[1] - cpu_before
