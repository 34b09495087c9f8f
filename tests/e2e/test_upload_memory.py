"""Large uploads through a one-worker Vault: the worker's memory stays flat, whatever the file or chunk size.

The SDK sends a 300 MB file in 8 MiB chunks; a raw client sends 64 MiB in one chunk. The
Vault relays each chunk in 64 KiB pieces as they arrive, so neither a chunk nor the file is
ever held whole. The worker's resident memory is sampled all through each upload; the fake
upstream counts and hashes what it received. The files are sparse (a marker at each 8 MiB,
zeros elsewhere) and read as they are sent, so the test process never holds them either.
"""

import base64
import hashlib
import http.client
import os
import threading
from pathlib import Path
from urllib.parse import urlsplit

from google import genai
from google.genai import types

from tests.databases import TEST_DATABASE_URL

MIB = 1024 * 1024
SIZE = 300 * MIB
SDK_CHUNK = 8 * MIB
ONE_CHUNK = 64 * MIB  # a chunk this size held whole would show at once
WORKER_GROWTH_LIMIT = 40 * MIB
TEST_PROCESS_GROWTH_LIMIT = 64 * MIB  # the SDK's 8 MiB chunk and its copies, far from the 300 MB file


def sparse_file(path: Path, size: int = SIZE) -> Path:
    """A file of `size` bytes taking almost no disk: a distinct marker at the start of every 8 MiB."""
    with path.open("wb") as file:
        file.truncate(size)
        for at in range(0, size, SDK_CHUNK):
            file.seek(at)
            file.write(f"chunk at {at}".encode())
    return path


def sha256_b64(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while piece := file.read(MIB):
            digest.update(piece)
    return base64.b64encode(digest.digest()).decode()


def rss(pid: int) -> int:
    """Resident memory of a process, in bytes (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def worker_of(master_pid: int) -> int:
    """The one gunicorn worker (the master's only child)."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


class PeakSampler(threading.Thread):
    """Samples the peak resident memory of some processes until stopped."""

    def __init__(self, pids: list[int], every: float = 0.005) -> None:
        super().__init__(daemon=True)
        self.pids, self.every = pids, every
        self.peaks = {pid: rss(pid) for pid in pids}
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            for pid in self.pids:
                self.peaks[pid] = max(self.peaks[pid], rss(pid))

    def stop(self) -> dict[int, int]:
        self.stopped.set()
        self.join()
        return self.peaks


def one_worker_vault(own_stack):
    """A Vault with one worker, and that worker's pid after one small upload has run the whole path."""
    stack = own_stack(key_count=1, backend="postgresql" if TEST_DATABASE_URL else "sqlite", WEB_CONCURRENCY="1")
    assert upload_raw(stack, b"hello").received == 5
    return stack, worker_of(stack.server._process.pid)


def upload_raw(stack, data_or_path: bytes | Path):
    """Start an upload and send it in one chunk, streamed from memory or from a file; the fake's upload."""
    size = len(data_or_path) if isinstance(data_or_path, bytes) else data_or_path.stat().st_size
    start_headers = {"x-goog-api-key": stack.vault_key, "X-Goog-Upload-Protocol": "resumable",
                     "X-Goog-Upload-Command": "start", "X-Goog-Upload-Header-Content-Length": str(size),
                     "X-Goog-Upload-Header-Content-Type": "application/octet-stream"}
    target = urlsplit(send(stack, "/upload/v1beta/files", start_headers, b"").getheader("X-Goog-Upload-URL"))
    chunk_headers = {"X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0",
                     "Content-Length": str(size)}
    if isinstance(data_or_path, bytes):
        answer = send(stack, f"{target.path}?{target.query}", chunk_headers, data_or_path)
    else:
        with data_or_path.open("rb") as body:
            answer = send(stack, f"{target.path}?{target.query}", chunk_headers, body)
    assert answer.status == 200 and answer.getheader("X-Goog-Upload-Status") == "final"
    return stack.fake.upload()


def send(stack, target: str, headers: dict[str, str], body) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection(stack.base_url.removeprefix("http://"), timeout=120, blocksize=MIB)
    connection.request("POST", target, body=body, headers=headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def peak_growth(pids: list[int], action) -> dict[int, int]:
    """How far above its resident memory before `action` each process went while it ran."""
    baseline = {pid: rss(pid) for pid in pids}
    sampler = PeakSampler(pids)
    sampler.start()
    try:
        action()
    finally:
        peaks = sampler.stop()
    return {pid: peaks[pid] - baseline[pid] for pid in pids}


def test_a_300_mb_upload_with_the_sdk_leaves_the_worker_s_memory_flat(own_stack, tmp_path):
    stack, worker = one_worker_vault(own_stack)
    path = sparse_file(tmp_path / "big.bin")
    expected = sha256_b64(path)
    client = genai.Client(api_key=stack.vault_key, http_options=types.HttpOptions(base_url=stack.base_url,
                                                                                   timeout=120_000))
    uploaded = []
    grown = peak_growth([worker, os.getpid()], lambda: uploaded.append(client.files.upload(file=str(path))))
    upstream = stack.fake.upload()
    assert (upstream.state, upstream.received, upstream.sha256_b64) == ("final", SIZE, expected)
    assert upstream.chunks == SIZE // SDK_CHUNK + (SIZE % SDK_CHUNK > 0)
    assert uploaded[0].size_bytes == SIZE and uploaded[0].sha256_hash == expected
    assert worker_of(stack.server._process.pid) == worker  # the same worker did it all, never replaced
    assert grown[worker] < WORKER_GROWTH_LIMIT, f"the worker grew by {grown[worker] / MIB:.1f} MiB"
    assert grown[os.getpid()] < TEST_PROCESS_GROWTH_LIMIT, f"the test grew by {grown[os.getpid()] / MIB:.1f} MiB"


def test_a_64_mib_chunk_is_relayed_as_it_arrives_not_held(own_stack, tmp_path):
    stack, worker = one_worker_vault(own_stack)
    path = sparse_file(tmp_path / "chunk.bin", ONE_CHUNK)
    expected = sha256_b64(path)
    upstream = []
    grown = peak_growth([worker], lambda: upstream.append(upload_raw(stack, path)))
    assert (upstream[0].state, upstream[0].received, upstream[0].sha256_b64) == ("final", ONE_CHUNK, expected)
    assert grown[worker] < WORKER_GROWTH_LIMIT, f"the worker grew by {grown[worker] / MIB:.1f} MiB"
