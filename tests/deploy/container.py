"""The Dockerfile built by podman, and the built image's commands run from its unpacked root.

No registry but Debian's and PyPI is reachable where the suite runs, and this sandbox's
container runtime cannot start containers (crun cannot set rlimits). So:

* `python:3.11-slim` is stood in for by a Debian bookworm root made with debootstrap from the
  machine's Debian mirror: python3.11 with venv, `python` in /usr/local/bin as in the official
  image, the machine's CA bundle (pip in the build verifies PyPI with it). It is imported into
  podman under the official name, labelled as a stand-in; a real `python:3.11-slim` already in
  podman's store is used as it is.
* `podman build --isolation chroot --network host --pull=never` builds the real Dockerfile.
* A container is created and mounted, never started. Its command runs in the mounted root
  with `chroot --userspec=<the image's USER>`, from its WORKDIR, with exactly the image's ENV
  (plus HOME from its /etc/passwd, as Docker adds it), inside a mount namespace of its own
  that holds /proc and a small /dev, so nothing is left mounted on the host when it exits.

The debootstrapped root is cached under /var/cache/gemini-vault-test-base (or
$VAULT_IMAGE_TEST_CACHE), keyed by the month, so it is made again at most once a month;
podman's layer cache makes a rebuild of an unchanged project a matter of seconds.
"""

import fcntl
import hashlib
import json
import os
import queue
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from tests.deploy.dockerfile import PROJECT_ROOT

BASE_IMAGE = "docker.io/library/python:3.11-slim"
IMAGE_TAG = "localhost/gemini-vault:test"
SUITE = "bookworm"
# python3-distutils provides python3.11-distutils, which python3.11-venv needs: debootstrap
# does not resolve virtual packages by itself.
PACKAGES = ("python3.11", "python3.11-venv", "python3-distutils", "ca-certificates")
# Bump when the recipe below changes, so every cache made by the old one is replaced.
RECIPE = "1"
STAND_IN_LABEL = "gemini-vault.test-base"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
CACHE = Path(os.environ.get("VAULT_IMAGE_TEST_CACHE", "/var/cache/gemini-vault-test-base"))
# What the official image sets besides its own Python: a PATH with /usr/local/bin first.
BASE_CHANGES = (
    "ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["python3"]',
)
LISTENING = re.compile(r"Listening at: (http://127\.0\.0\.1:(\d+)) \((\d+)\)")
WORKER = re.compile(r"Booting worker with pid: (\d+)")

# Runs as root in a fresh mount namespace, then becomes the image's user in its root. /proc
# and /dev are mounted there only: they go away with the namespace's last process.
ENTER_ROOT = r"""
root=$1 user=$2 workdir=$3; shift 3
mount -t proc proc "$root/proc" || exit 125
mount -t tmpfs -o mode=755,nosuid dev "$root/dev" || exit 125
for node in null zero full random urandom tty; do
  touch "$root/dev/$node" && mount --bind "/dev/$node" "$root/dev/$node" || exit 125
done
mkdir "$root/dev/shm" && mount -t tmpfs -o mode=1777,nosuid,nodev shm "$root/dev/shm" || exit 125
ln -s /proc/self/fd "$root/dev/fd" && ln -s fd/0 "$root/dev/stdin" && ln -s fd/1 "$root/dev/stdout" \
  && ln -s fd/2 "$root/dev/stderr" || exit 125
exec chroot --userspec="$user" "$root" /bin/sh -c 'cd "$0" && exec "$@"' "$workdir" "$@"
"""


class Unavailable(Exception):
    """This machine cannot build or run the image: the reason to skip."""


def run(*command: str, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)


def checked(*command: str, timeout: float = 600, **kwargs) -> str:
    """stdout of a command that must succeed; its output is the failure message otherwise."""
    result = run(*command, timeout=timeout, **kwargs)
    assert result.returncode == 0, f"{' '.join(command)} exited {result.returncode}\n{result.stdout}{result.stderr}"
    return result.stdout


# --- What the machine must have ---------------------------------------------------------


def debian_mirror() -> str:
    """The Debian archive this machine's apt uses ($VAULT_DEBIAN_MIRROR wins)."""
    if mirror := os.environ.get("VAULT_DEBIAN_MIRROR"):
        return mirror.rstrip("/")
    sources = Path("/etc/apt/sources.list.d")
    texts = [path.read_text() for path in sorted(sources.glob("*.sources"))] if sources.is_dir() else []
    uris = [uri for text in texts for line in text.splitlines() if line.startswith("URIs:")
            for uri in line.split()[1:]]
    legacy = Path("/etc/apt/sources.list")
    if legacy.is_file():
        for line in legacy.read_text().splitlines():
            words = re.sub(r"\[[^]]*\]", "", line).split()
            if len(words) >= 2 and words[0] == "deb":
                uris.append(words[1])
    for uri in uris:
        if uri.rstrip("/").endswith("/debian"):
            return uri.rstrip("/")
    return DEFAULT_MIRROR


def check_machine(mirror: str) -> None:
    """Root on Linux, the mirror reachable, podman and debootstrap installed (apt-get brings them)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        raise Unavailable("building and running the image needs root (debootstrap, podman, chroot)")
    try:
        with urllib.request.urlopen(f"{mirror}/dists/{SUITE}/Release", timeout=15) as response:  # noqa: S310
            response.read(1)
    except OSError as error:
        raise Unavailable(f"the Debian mirror {mirror} cannot be reached: {error}") from error
    for tool in ("unshare", "chroot", "mount", "tar"):
        if not shutil.which(tool):
            raise Unavailable(f"{tool} is not installed")
    wanted = [package for package, present in (
        ("podman", shutil.which("podman")),
        ("debootstrap", shutil.which("debootstrap")),
        ("debian-archive-keyring", Path("/usr/share/keyrings/debian-archive-keyring.gpg").is_file()),
    ) if not present]
    if wanted:
        if not shutil.which("apt-get"):
            raise Unavailable(f"{', '.join(wanted)} missing and no apt-get to install them")
        environ = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
        result = run("sh", "-c", 'apt-get update -qq && apt-get install -y -qq "$@"', "sh", *wanted, env=environ)
        if result.returncode != 0:
            output = (result.stdout + result.stderr)[-2000:]
            raise Unavailable(f"apt-get install {' '.join(wanted)} failed:\n{output}")
    info = run("podman", "info", "--format", "{{.Store.GraphDriverName}}", timeout=120)
    if info.returncode != 0:
        raise Unavailable(f"podman cannot run here: {info.stderr.strip()[-2000:]}")


# --- The stand-in base image -------------------------------------------------------------


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """One test run at a time prepares the base (several worktrees may test at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ca_bundle() -> Path | None:
    """The machine's CA bundle: the one its own pip and apt trust."""
    for candidate in (os.environ.get("PIP_CERT"), ssl.get_default_verify_paths().cafile,
                      "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def image_labels(reference: str) -> dict[str, str] | None:
    """The labels of an image in podman's store; None where there is no such image."""
    result = run("podman", "image", "inspect", "--format", "{{json .Labels}}", reference, timeout=60)
    if result.returncode != 0:
        return None
    return json.loads(result.stdout) or {}


def ensure_base_image(mirror: str) -> str:
    """`python:3.11-slim` in podman's store: a real one as it is, else the current stand-in.

    Returns what was done, for the report: "real", "cached" or "imported".
    """
    root_key = f"{SUITE}-{date.today():%Y-%m}-r{RECIPE}"
    bundle = ca_bundle()
    bundle_hash = hashlib.sha256(bundle.read_bytes()).hexdigest()[:12] if bundle else "none"
    image_key = f"{root_key}-ca{bundle_hash}"
    with locked(CACHE / ".lock"):
        labels = image_labels(BASE_IMAGE)
        if labels is not None and STAND_IN_LABEL not in labels:
            return "real"
        if labels is not None and labels[STAND_IN_LABEL] == image_key:
            return "cached"
        root = CACHE / root_key
        if not root.is_dir():
            debootstrap(root, mirror)
        if bundle:
            shutil.copyfile(bundle, root / "etc/ssl/certs/ca-certificates.crt")
        changes = [arg for change in (*BASE_CHANGES, f"LABEL {STAND_IN_LABEL}={image_key}")
                   for arg in ("--change", change)]
        with subprocess.Popen(["tar", "-C", str(root), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE) as tar:
            imported = run("podman", "import", *changes, "-", BASE_IMAGE, stdin=tar.stdout)
        assert tar.returncode == 0 and imported.returncode == 0, f"podman import failed:\n{imported.stderr}"
        return "imported"


def debootstrap(root: Path, mirror: str) -> None:
    """A minimal bookworm with Python 3.11 at `root`, trimmed, `python` on /usr/local/bin; older roots go."""
    for old in CACHE.iterdir():
        if old.is_dir() and old != root:
            shutil.rmtree(old, ignore_errors=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"{root.name}.", dir=CACHE))
    try:
        checked("debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(scratch), mirror,
                timeout=1200)
        for folder in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man",
                       "usr/share/locale", "debootstrap"):
            for path in (scratch / folder).glob("*"):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        for name in ("python", "python3"):
            (scratch / "usr/local/bin" / name).symlink_to("/usr/bin/python3.11")
        scratch.rename(root)
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)


# --- The project's image -----------------------------------------------------------------


@dataclass(frozen=True)
class ImageConfig:
    """What `docker run` takes from the image: USER, WORKDIR, ENV, CMD and HEALTHCHECK."""

    id: str
    user: str
    workdir: str
    env: dict[str, str]
    command: list[str]
    healthcheck: list[str]


def build_image() -> str:
    """`podman build` of the project; the image's id (the tag may be taken by another run)."""
    with tempfile.TemporaryDirectory() as scratch:
        iidfile = Path(scratch) / "iid"
        checked("podman", "build", "--isolation", "chroot", "--network", "host", "--pull=never",
                # Docker's format: the OCI one has no HEALTHCHECK.
                "--format", "docker", "--iidfile", str(iidfile), "-t", IMAGE_TAG, str(PROJECT_ROOT), timeout=1200)
        return iidfile.read_text().strip()


def inspect(image_id: str) -> ImageConfig:
    [inspected] = json.loads(checked("podman", "image", "inspect", image_id, timeout=60))
    config = inspected["Config"]
    env = dict(entry.split("=", 1) for entry in config.get("Env") or [])
    # Beside the OCI config: podman keeps Docker's HEALTHCHECK at the top level.
    test = (inspected.get("Healthcheck") or config.get("Healthcheck") or {}).get("Test") or []
    healthcheck = test[1:] if test[:1] == ["CMD"] else ["/bin/sh", "-c", *test[1:]] if test[:1] == ["CMD-SHELL"] else []
    command = (config.get("Entrypoint") or []) + (config.get("Cmd") or [])
    return ImageConfig(image_id, config.get("User") or "0:0", config.get("WorkingDir") or "/", env, command,
                       healthcheck)


@contextmanager
def mounted_container(image: ImageConfig) -> Iterator[Path]:
    """A created, never started container's root, writable; unmounted and removed afterwards."""
    container = checked("podman", "create", image.id, timeout=120).strip()
    try:
        yield Path(checked("podman", "mount", container, timeout=60).strip())
    finally:
        run("podman", "umount", container, timeout=60)
        run("podman", "rm", "--force", container, timeout=120)


def home_of(root: Path, user: str) -> str:
    """HOME as Docker sets it: the user's entry in the image's /etc/passwd, else /."""
    uid = user.split(":")[0]
    passwd = root / "etc/passwd"
    for line in passwd.read_text().splitlines() if passwd.is_file() else []:
        fields = line.split(":")
        if len(fields) >= 6 and uid in (fields[0], fields[2]):
            return fields[5]
    return "/"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RootProcess:
    """A command run as the image runs it, in its own process group; a context manager that stops it."""

    def __init__(self, image: ImageConfig, root: Path, command: list[str], **extra_env: str | None):
        assert command, "no command to run"
        environ = {"HOME": home_of(root, image.user)} | image.env | extra_env
        environ = {name: value for name, value in environ.items() if value is not None}
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.process = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--fork", "--",
             "/bin/sh", "-c", ENTER_ROOT, "sh", str(root), image.user, image.workdir, *command],
            env=environ, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        self._pump_thread = threading.Thread(target=self._pump, daemon=True)
        self._pump_thread.start()

    def __enter__(self) -> "RootProcess":
        return self

    def __exit__(self, *exc_info) -> None:
        self.kill()

    def _pump(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)
            self._queue.put(line)
        self._queue.put(None)

    def log(self) -> str:
        return "".join(self.lines)

    def wait(self, timeout: float) -> int:
        """The exit code, once all its output is read; the whole group is killed if it takes longer."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"still running after {timeout} s:\n{self.log()}") from None
        self._pump_thread.join(timeout=10)
        return code

    def wait_until_listening(self, timeout: float = 120) -> tuple[str, int]:
        """gunicorn's base URL and its master's pid, once it says it is listening."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"not listening after {timeout} s:\n{self.log()}") from None
            if line is None:
                raise AssertionError("the image's command exited before listening:\n" + self.log())
            if match := LISTENING.search(line):
                return match.group(1), int(match.group(3))

    def worker_pids(self) -> list[int]:
        return [int(match.group(1)) for line in self.lines if (match := WORKER.search(line))]

    def kill(self) -> None:
        """SIGKILL to the process group, then wait until none of it is left."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and group_members(self.process.pid):
            time.sleep(0.1)


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(stat.parent.name))
    return members


def run_in_root(image: ImageConfig, root: Path, command: list[str], timeout: float = 120,
                **extra_env: str | None) -> tuple[int, str]:
    """A command run to its end as the image runs it: exit code and output."""
    with RootProcess(image, root, command, **extra_env) as process:
        return process.wait(timeout), process.log()
