"""Class 7 -- hostile uploads: the upload URL is the only credential a chunk carries, checked before a byte moves.

A resumable upload's start (with a Vault key) gets a Vault URL whose token stands for
Google's own upload URL, which never leaves the Vault. Every attempt is judged by the same
oracles: the status and Google's error envelope; `X-Goog-Upload-Status: final` on a refused
chunk request (so the SDK stops instead of retrying); what reached the fake (usually
nothing); that nothing changed -- pool health, the balance, the user's files and storage,
the upload's own progress upstream -- and that the upload then still completes, byte for byte.

Most attempts run on the package's `pooled` Vault, a trickling chunk on `limited` (2-second body
deadline). Limits run on a Vault of their own with a small upload limit and storage quota
(`tight`), expiry on one whose upload sessions last a second. Memory: `tests/e2e/test_upload_memory.py`.
"""

import base64
import hashlib
import io
import socket
import struct
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from tests.databases import TEST_DATABASE_URL
from tests.e2e.hostile.conftest import BODY_DEADLINE, private_stack
from tests.e2e.hostile.probe import (
    Answer,
    address_of,
    assert_dialect,
    assert_no_secret_in,
    assert_no_upstream_call,
    host_of,
    parse_response,
    pool_health,
    read_until_closed,
    send,
    send_bytes,
)
from tests.e2e.stacks import ProxyStack
from tests.fake_gemini import faults
from vault.inbound import READ_SIZE

DATA = hashlib.shake_256(b"hostile uploads").digest(5000)
HALF = 2000
UPLOAD_PATH = "/upload/v1beta/files"
MAX_UPLOAD = 65536
QUOTA = 100_000
TIMEOUT = 10


# --- callers and uploads -----------------------------------------------------------------------

@dataclass
class Caller:
    """A user of a stack with one Vault key."""

    token: str
    user_id: int
    key: str
    key_id: int

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Upload:
    """A started upload: the Vault's token and URL (path and query), and the fake's upload_id behind it."""

    token: str
    target: str
    upstream_id: str
    size: int


def main_caller(stack: ProxyStack) -> Caller:
    me = requests.get(f"{stack.base_url}/auth/users/me", headers={"Authorization": f"Bearer {stack.user_token}"},
                      timeout=TIMEOUT).json()
    return Caller(stack.user_token, me["id"], stack.vault_key, 0)


def new_key(stack: ProxyStack, caller: Caller) -> Caller:
    """Another Vault key of `caller`'s user."""
    created = requests.post(f"{stack.base_url}/api-keys/", json={"name": "uploads"}, headers=caller.headers,
                            timeout=TIMEOUT)
    assert created.status_code == 201, created.text
    return Caller(caller.token, caller.user_id, created.json()["key"], created.json()["id"])


def new_user(stack: ProxyStack) -> Caller:
    """A user of its own (signed up like anyone), with one Vault key."""
    account = {"email": f"up-{uuid.uuid4().hex[:12]}@example.com", "password": "long enough"}
    assert requests.post(f"{stack.base_url}/auth/users/", json=account, timeout=TIMEOUT).status_code == 201
    token = requests.post(f"{stack.base_url}/auth/token", json=account, timeout=TIMEOUT).json()["access_token"]
    me = requests.get(f"{stack.base_url}/auth/users/me", headers={"Authorization": f"Bearer {token}"},
                      timeout=TIMEOUT).json()
    return new_key(stack, Caller(token, me["id"], "", 0))


def start_headers(key: str | None, size: int | str, mime: str = "application/octet-stream") -> list[tuple[str, str]]:
    """The headers of a resumable start as google-genai sends them."""
    headers = [("x-goog-api-key", key)] if key else []
    return headers + [("X-Goog-Upload-Protocol", "resumable"), ("X-Goog-Upload-Command", "start"),
                      ("X-Goog-Upload-Header-Content-Length", str(size)),
                      ("X-Goog-Upload-Header-Content-Type", mime), ("Content-Type", "application/json")]


def start(stack: ProxyStack, size: int = len(DATA), key: str | None = None, version: str = "v1beta",
          body: bytes | dict | None = None, headers: list[tuple[str, str]] | None = None) -> Answer:
    body = {"file": {"displayName": "hostile"}} if body is None else body
    headers = start_headers(key or stack.vault_key, size) if headers is None else headers
    return send(stack, "POST", f"/upload/{version}/files", headers, body)


def open_upload(stack: ProxyStack, size: int = len(DATA), key: str | None = None, version: str = "v1beta") -> Upload:
    answer = start(stack, size, key, version)
    assert answer.status == 200, answer.body
    return upload_of(stack, answer, size)


def upload_of(stack: ProxyStack, answer: Answer, size: int = len(DATA)) -> Upload:
    """The upload a start answer opened (the fake's is the one it started last)."""
    url = urlsplit(answer.header("X-Goog-Upload-URL"))
    return Upload(dict(parse_qsl(url.query))["upload_id"], f"{url.path}?{url.query}",
                  stack.fake.uploads.latest().upload_id, size)


def send_chunk(stack: ProxyStack, target: str, data: bytes | None, offset: int | None, command: str = "upload",
               extra: list[tuple[str, str]] = ()) -> Answer:
    """One request on an upload URL: the command, the offset (None: no header) and the bytes (None: no body)."""
    headers = [("X-Goog-Upload-Command", command)]
    if offset is not None:
        headers.append(("X-Goog-Upload-Offset", str(offset)))
    return send(stack, "POST", target, headers + list(extra), data)


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def complete(stack: ProxyStack, upload: Upload, offset: int, data: bytes = DATA, key: str | None = None) -> dict:
    """Send the rest from `offset` and finalize: the file Google stored is exactly `data`, and it is the caller's."""
    answer = send_chunk(stack, upload.target, data[offset:], offset, "upload, finalize")
    assert answer.status == 200 and answer.header("X-Goog-Upload-Status") == "final", answer.body
    file = answer.json()["file"]
    assert (int(file["sizeBytes"]), file["sha256Hash"]) == (len(data), sha256_b64(data))
    upstream = stack.fake.upload(upload.upstream_id)
    assert (upstream.state, upstream.received, upstream.sha256_b64) == ("final", len(data), sha256_b64(data))
    assert file["name"] == upstream.file_name and file["name"] in file_names(stack, key)
    return file


# --- oracles -----------------------------------------------------------------------------------

def file_names(stack: ProxyStack, key: str | None = None) -> list[str]:
    """Every file the Vault lists for the key's user, page after page."""
    names, token = [], ""
    while True:
        page = requests.get(f"{stack.base_url}/v1beta/files", params={"pageSize": 100, "pageToken": token or None},
                            headers={"x-goog-api-key": key or stack.vault_key}, timeout=TIMEOUT).json()
        names += [file["name"] for file in page.get("files", [])]
        token = page.get("nextPageToken")
        if not token:
            return names


def storage_used(stack: ProxyStack, user_id: int) -> int:
    """The bytes a user holds (live files and uploads under way), as the admin sees them."""
    return requests.get(f"{stack.base_url}/admin/api/users/{user_id}/resources", headers=stack.admin(),
                        timeout=TIMEOUT).json()["storage"]["used_bytes"]


def state(stack: ProxyStack, caller: Caller | None = None) -> dict:
    """What no refused attempt may change: pool health, the user's money, files and storage."""
    caller = caller or main_caller(stack)
    me = requests.get(f"{stack.base_url}/auth/users/me", headers=caller.headers, timeout=TIMEOUT).json()
    return {"pool": pool_health(stack), "balance": me["balance_nano_usd"], "files": file_names(stack, caller.key),
            "storage": storage_used(stack, caller.user_id)}


def refused(stack: ProxyStack, answer: Answer, status: int, google_status: str | None = None,
            final: bool = True) -> dict:
    """A refusal in Google's envelope (and, on a chunk request, `X-Goog-Upload-Status: final`)."""
    error = assert_dialect(answer, status, "google")
    if google_status:
        assert error["status"] == google_status, error
    if final:
        assert answer.header("X-Goog-Upload-Status") == "final", answer.headers
    assert_no_secret_in(stack, answer.text())
    return error


def upstream_progress(stack: ProxyStack, upload: Upload) -> tuple:
    upstream = stack.fake.upload(upload.upstream_id)
    return upstream.state, upstream.received, upstream.chunks


def wait_until(condition: Callable[[], object], timeout: float = TIMEOUT) -> None:
    """Poll a condition nothing signals (a counter in the fake, a lease in the Vault's database)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.01)


def query_when_free(stack: ProxyStack, upload: Upload) -> Answer:
    """Ask the Vault where an upload stands once no request holds it (409 until the holder has settled)."""
    deadline = time.monotonic() + TIMEOUT
    while (answer := send_chunk(stack, upload.target, None, None, "query")).status == 409:
        assert time.monotonic() < deadline, "the upload stayed leased"
        time.sleep(0.01)
    return answer


def flip(token: str, at: int) -> str:
    """`token` with one character changed."""
    at %= len(token)
    return token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1:]


# --- 1. the start answer -------------------------------------------------------------------------

SMUGGLED_ON_A_CHUNK = [("x-goog-api-key", "AIzaSySMUGGLED0000000000000000000000000"),
                       ("Authorization", "Bearer ya29.smuggled"), ("X-HTTP-Method-Override", "DELETE"),
                       ("X-Goog-Upload-URL", "https://evil.example/upload"), ("X-Goog-User-Project", "other"),
                       ("X-Goog-Upload-Protocol", "multipart"), ("Cookie", "session=x")]
CHUNK_HEADERS_UPSTREAM = {"host", "accept-encoding", "accept", "connection", "user-agent", "content-length",
                          "x-goog-upload-command", "x-goog-upload-offset"}

@pytest.mark.parametrize("version", ["v1beta", "v1"])
def test_the_start_answer_points_at_the_vault_and_hides_google_s_upload(pooled, version):
    answer = start(pooled, version=version)
    assert answer.status == 200 and answer.header("X-Goog-Upload-Status") == "active"
    url = urlsplit(answer.header("X-Goog-Upload-URL"))
    assert f"{url.scheme}://{url.netloc}" == pooled.base_url and url.path == f"/upload/{version}/files"
    query = parse_qsl(url.query, keep_blank_values=True)
    assert [name for name, _ in query] == ["upload_id", "upload_protocol"] and query[1][1] == "resumable"
    token = query[0][1]
    assert len(base64.urlsafe_b64decode(token + "=")) == 32  # 256 random bits
    upstream = pooled.fake.uploads.latest()
    everything = answer.text()
    for leak in ("AIza", upstream.upload_id, f"127.0.0.1:{pooled.fake.port}", pooled.fake.base_url):
        assert leak not in everything
    assert_no_secret_in(pooled, everything)
    names = {name.lower() for name, _ in answer.headers}
    assert {name for name in names if name.startswith(("x-goog", "x-guploader"))} == {
        "x-goog-upload-status", "x-goog-upload-url", "x-goog-upload-chunk-granularity"}
    start_call, = pooled.fake.calls
    assert start_call.endpoint == "files.upload.start" and start_call.key in pooled.upstream_keys
    upload = upload_of(pooled, answer)
    assert send_chunk(pooled, upload.target, DATA[:HALF], 0, extra=SMUGGLED_ON_A_CHUNK).status == 200
    complete(pooled, upload, HALF)
    chunks = [call for call in pooled.fake.calls if call.endpoint == "files.upload.chunk"]
    assert [call.query["upload_id"] for call in chunks] == [[upstream.upload_id]] * 2
    for call in chunks:  # Google's upload URL is the only credential upstream, and nothing else of the client's
        assert call.key is None and not call.credentials and call.method_override is None
        assert {name.lower() for name, _ in call.raw_headers} <= CHUNK_HEADERS_UPSTREAM, call.raw_headers
    for call in pooled.fake.calls:  # the Vault's token is for the Vault: it never travels on
        assert token not in call.request_target + repr(call.raw_headers)


# --- 2. tokens that open nothing -----------------------------------------------------------------

# id -> (query of the chunk URL from (token, the fake's upload_id), status without / with a Vault key).
# A query naming no `upload_id` at all is a start (Vault key first, then the start headers); an
# `upload_id` the allow-list cannot parse is a 400; a well-formed one that opens nothing, a 404.
TOKEN_CASES: dict[str, tuple[Callable[[str, str], str], int, int]] = {
    "no-query": (lambda t, u: "", 401, 400),
    "no-upload-id": (lambda t, u: "upload_protocol=resumable", 400, 400),  # a system parameter on a start
    "upper-case-name": (lambda t, u: f"UPLOAD_ID={t}", 401, 400),
    "mixed-case-name": (lambda t, u: f"Upload_Id={t}", 401, 400),
    "dashed-name": (lambda t, u: f"upload-id={t}", 401, 400),
    "nul-in-name": (lambda t, u: f"upload_id%00={t}", 401, 400),
    "empty": (lambda t, u: "upload_id=&upload_protocol=resumable", 400, 400),
    "19-chars": (lambda t, u: f"upload_id={t[:19]}", 400, 400),
    "129-chars": (lambda t, u: f"upload_id={(t * 4)[:129]}", 400, 400),
    "padded": (lambda t, u: f"upload_id={t}=", 400, 400),
    "encoded-padding": (lambda t, u: f"upload_id={t}%3D", 400, 400),
    "space-first": (lambda t, u: f"upload_id=%20{t}", 400, 400),
    "nul-last": (lambda t, u: f"upload_id={t}%00", 400, 400),
    "dot-inside": (lambda t, u: f"upload_id={t[:20]}.{t[20:]}", 400, 400),
    "repeated": (lambda t, u: f"upload_id={t}&upload_id={t}", 400, 400),
    "wrong-then-right": (lambda t, u: f"upload_id={flip(t, 0)}&upload_id={t}", 400, 400),
    "right-then-empty": (lambda t, u: f"upload_id={t}&upload_id=", 400, 400),
    "other-protocol": (lambda t, u: f"upload_id={t}&upload_protocol=multipart", 400, 400),
    "20-chars": (lambda t, u: f"upload_id={t[:20]}", 404, 404),
    "one-char-more": (lambda t, u: f"upload_id={t}A", 404, 404),
    "128-chars": (lambda t, u: f"upload_id={(t * 4)[:128]}", 404, 404),
    "first-char-changed": (lambda t, u: f"upload_id={flip(t, 0)}", 404, 404),
    "middle-char-changed": (lambda t, u: f"upload_id={flip(t, 21)}&upload_protocol=resumable", 404, 404),
    "last-char-changed": (lambda t, u: f"upload_id={flip(t, -1)}", 404, 404),
    "swapped-case": (lambda t, u: f"upload_id={t.swapcase()}", 404, 404),
    "reversed": (lambda t, u: f"upload_id={t[::-1]}", 404, 404),
    "stored-hash": (lambda t, u: f"upload_id={hashlib.sha256(t.encode()).hexdigest()}", 404, 404),
    "google-s-upload-id": (lambda t, u: f"upload_id={u}&upload_protocol=resumable", 404, 404),
    "encoded-name-wrong-token": (lambda t, u: f"upload%5Fid={flip(t, 5)}", 404, 404),
}
ATTEMPTS = [("upload", HALF, DATA[HALF:HALF + 100]), ("upload, finalize", HALF, DATA[HALF:]),
            ("finalize", None, None), ("query", None, None), ("cancel", None, None)]


@pytest.mark.parametrize("with_key", [False, True], ids=["no-key", "vault-key"])
@pytest.mark.parametrize("case", list(TOKEN_CASES))
def test_a_chunk_request_without_its_upload_s_token_reaches_nothing(pooled, case, with_key):
    upload = open_upload(pooled)
    assert send_chunk(pooled, upload.target, DATA[:HALF], 0).status == 200
    build, status, keyed_status = TOKEN_CASES[case]
    query = build(upload.token, upload.upstream_id)
    if with_key:
        query += f"&key={pooled.vault_key}"
    extra = [("x-goog-api-key", pooled.vault_key)] if with_key else []
    before, progress = state(pooled), upstream_progress(pooled, upload)
    pooled.fake.reset()
    for command, offset, data in ATTEMPTS:
        answer = send_chunk(pooled, f"{UPLOAD_PATH}?{query}", data, offset, command, extra)
        # Refusals the allow-list makes before the upload code runs carry no upload status (see below).
        refused(pooled, answer, keyed_status if with_key else status, final=status == 404)
    assert_no_upstream_call(pooled)
    assert upstream_progress(pooled, upload) == progress and state(pooled) == before
    complete(pooled, upload, HALF)


@pytest.mark.parametrize("case", ["empty", "19-chars", "repeated"])
def test_a_malformed_upload_url_also_says_the_upload_is_final(pooled, case):
    upload = open_upload(pooled)
    answer = send_chunk(pooled, f"{UPLOAD_PATH}?{TOKEN_CASES[case][0](upload.token, upload.upstream_id)}",
                        DATA[:HALF], 0)
    refused(pooled, answer, 400, "INVALID_ARGUMENT", final=True)


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
def test_another_method_on_an_upload_url_is_405_and_reaches_nothing(pooled, method):
    upload = open_upload(pooled)
    assert send_chunk(pooled, upload.target, DATA[:HALF], 0).status == 200
    before, progress = state(pooled), upstream_progress(pooled, upload)
    pooled.fake.reset()
    for command in ("upload", "query", "cancel"):
        answer = send(pooled, method, upload.target, [("X-Goog-Upload-Command", command),
                                                      ("X-Goog-Upload-Offset", str(HALF))])
        assert_dialect(answer, 405, "head" if method == "HEAD" else "google")
        assert "POST" in answer.header("Allow")
    assert_no_upstream_call(pooled)
    assert upstream_progress(pooled, upload) == progress and state(pooled) == before
    complete(pooled, upload, HALF)


def end_finalized(stack: ProxyStack, upload: Upload) -> None:
    assert send_chunk(stack, upload.target, DATA[:HALF], 0).status == 200
    complete(stack, upload, HALF)


def end_cancelled(stack: ProxyStack, upload: Upload) -> None:
    assert send_chunk(stack, upload.target, DATA[:HALF], 0).status == 200
    answer = send_chunk(stack, upload.target, None, None, "cancel")
    assert answer.status == 200 and answer.header("X-Goog-Upload-Status") == "cancelled"
    assert stack.fake.upload(upload.upstream_id).state == "cancelled"


ENDINGS = ["finalized", "cancelled", "key-revoked", "user-deactivated"]


@pytest.mark.parametrize("ending", ENDINGS)
def test_the_token_of_an_ended_upload_opens_nothing(pooled, ending):
    caller = main_caller(pooled)
    owner = new_user(pooled) if ending == "user-deactivated" else new_key(pooled, caller)
    upload = open_upload(pooled, key=owner.key)
    if ending == "finalized":
        end_finalized(pooled, upload)
    elif ending == "cancelled":
        end_cancelled(pooled, upload)
    else:
        assert send_chunk(pooled, upload.target, DATA[:HALF], 0).status == 200
        ended = (requests.delete(f"{pooled.base_url}/api-keys/{owner.key_id}", headers=owner.headers,
                                 timeout=TIMEOUT)
                 if ending == "key-revoked" else
                 requests.patch(f"{pooled.base_url}/admin/api/users/{owner.user_id}", json={"is_active": False},
                                headers=pooled.admin(), timeout=TIMEOUT))
        assert ended.status_code in (200, 204), ended.text
    before, progress = state(pooled), upstream_progress(pooled, upload)
    pooled.fake.reset()
    for key in (None, pooled.vault_key, owner.key):
        extra = [("x-goog-api-key", key)] if key else []
        for command, offset, data in ATTEMPTS + [("upload", 0, DATA)]:
            answer = send_chunk(pooled, upload.target, data, offset, command, extra)
            refused(pooled, answer, 404, "NOT_FOUND")
    assert_no_upstream_call(pooled)
    assert upstream_progress(pooled, upload) == progress and state(pooled) == before


def test_an_expired_upload_token_opens_nothing(own_stack):
    stack = own_stack(key_count=1, backend="postgresql" if TEST_DATABASE_URL else "sqlite",
                      VAULT_UPLOAD_SESSION_SECONDS="1")
    upload = open_upload(stack)
    opened = time.time()
    assert send_chunk(stack, upload.target, DATA[:HALF], 0).status == 200
    caller = main_caller(stack)
    assert storage_used(stack, caller.user_id) == len(DATA)  # an upload under way holds its declared size
    time.sleep(max(0.0, opened + 1.05 - time.time()))  # the session's second, and not a moment longer
    before, progress = state(stack), upstream_progress(stack, upload)
    assert before["storage"] == 0  # and stops holding it once expired
    stack.fake.reset()
    for command, offset, data in ATTEMPTS:
        refused(stack, send_chunk(stack, upload.target, data, offset, command), 404, "NOT_FOUND")
    assert_no_upstream_call(stack)
    assert upstream_progress(stack, upload) == progress and state(stack) == before


# --- 3. chunks that are refused, and the upload goes on ----------------------------------------

def offset_case(offset: str) -> tuple[list[tuple[str, str]], bytes, int]:
    return [("X-Goog-Upload-Command", "upload"), ("X-Goog-Upload-Offset", offset)], DATA[HALF:HALF + 100], 400


def command_case(command: str, data: bytes | None = DATA[HALF:HALF + 100]) -> tuple:
    return [("X-Goog-Upload-Command", command), ("X-Goog-Upload-Offset", str(HALF))], data, 400


# id -> (headers, body, status) of one chunk request on an upload holding HALF bytes
BAD_CHUNKS = {
    "offset-ahead": offset_case(str(HALF + 1)),
    "offset-far-ahead": offset_case(str(len(DATA))),
    "offset-behind": offset_case(str(HALF - 1)),
    "offset-zero": offset_case("0"),
    "offset-negative": offset_case(f"-{HALF}"),
    "offset-plus-signed": offset_case(f"+{HALF}"),
    "offset-hex": offset_case(hex(HALF)),
    "offset-float": offset_case(f"{HALF}.0"),
    "offset-exponent": offset_case("2e3"),
    "offset-empty": offset_case(""),
    "offset-words": offset_case("two thousand"),
    "offset-superscript": offset_case("\u00b2"),  # str.isdigit() says yes, int() says no
    "offset-16-digits": offset_case("9" * 16),
    "offset-list": offset_case(f"{HALF}, {HALF}"),
    "offset-twice": ([("X-Goog-Upload-Command", "upload"), ("X-Goog-Upload-Offset", str(HALF)),
                      ("X-Goog-Upload-Offset", str(HALF))], DATA[HALF:HALF + 100], 400),
    "offset-missing": ([("X-Goog-Upload-Command", "upload")], DATA[HALF:HALF + 100], 400),
    "one-byte-too-long": command_case("upload", DATA[HALF:] + b"x"),
    "one-byte-too-long-finalize": command_case("upload, finalize", DATA[HALF:] + b"x"),
    "much-too-long": command_case("upload", DATA[HALF:] * 40),
    "command-missing": ([("X-Goog-Upload-Offset", str(HALF))], DATA[HALF:HALF + 100], 400),
    "command-empty": command_case(""),
    "command-commas": command_case(", ,"),
    "command-start": command_case("start"),
    "command-upload-query": command_case("upload, query"),
    "command-query-upload": command_case("query, upload"),
    "command-upload-cancel": command_case("upload, cancel"),
    "command-finalize-cancel": command_case("finalize, cancel", None),
    "command-query-cancel": command_case("query, cancel", None),
    "command-upload-finalize-query": command_case("upload, finalize, query"),
    "command-space-separated": command_case("upload finalize"),
    "command-semicolon": command_case("upload;finalize"),
    "command-download": command_case("download", None),
    "command-delete": command_case("delete", None),
    "query-with-bytes": command_case("query"),
    "cancel-with-bytes": command_case("cancel"),
    "finalize-with-bytes": command_case("finalize"),
    "upload-without-body": ([("X-Goog-Upload-Command", "upload"), ("X-Goog-Upload-Offset", str(HALF))], None, 411),
}


def assert_refused_and_resumable(stack: ProxyStack, upload: Upload, attempt: Callable[[], Answer], status: int):
    """The attempt is refused with nothing sent upstream and nothing changed; then the upload completes."""
    before, progress = state(stack), upstream_progress(stack, upload)
    stack.fake.reset()
    refused(stack, attempt(), status)
    assert_no_upstream_call(stack)
    assert upstream_progress(stack, upload) == progress and state(stack) == before
    complete(stack, upload, HALF)


@pytest.mark.parametrize("case", list(BAD_CHUNKS))
def test_a_refused_chunk_sends_nothing_and_the_upload_resumes(pooled, case):
    headers, body, status = BAD_CHUNKS[case]
    upload = open_upload(pooled)
    assert send_chunk(pooled, upload.target, DATA[:HALF], 0).status == 200
    assert_refused_and_resumable(pooled, upload, lambda: send(pooled, "POST", upload.target, headers, body), status)


@pytest.mark.parametrize(("command", "status"), [("upload", 411), ("upload, finalize", 411), ("query", 400),
                                                 ("cancel", 400)])
def test_a_chunked_body_on_an_upload_url_is_refused(pooled, command, status):
    upload = open_upload(pooled)
    assert send_chunk(pooled, upload.target, DATA[:HALF], 0).status == 200
    rest = DATA[HALF:]
    raw = (f"POST {upload.target} HTTP/1.1\r\nHost: {host_of(pooled)}\r\nX-Goog-Upload-Command: {command}\r\n"
           f"X-Goog-Upload-Offset: {HALF}\r\nTransfer-Encoding: chunked\r\n\r\n{len(rest):x}\r\n").encode()
    assert_refused_and_resumable(pooled, upload, lambda: send_bytes(pooled, raw + rest + b"\r\n0\r\n\r\n"), status)


# --- 4. one chunk at a time --------------------------------------------------------------------

def test_two_requests_on_one_upload_at_once_one_gets_409(pooled):
    upload = open_upload(pooled)
    pooled.fake.reset()
    hang = pooled.fake.hang(endpoint="files.upload.chunk")
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(send_chunk, pooled, upload.target, DATA[:HALF], 0)
        assert hang.wait_started(), "the first chunk never reached the upstream"
        before = state(pooled)
        for command, offset, data in [("upload", 0, DATA[:HALF]), ("upload, finalize", 0, DATA)] + ATTEMPTS:
            refused(pooled, send_chunk(pooled, upload.target, data, offset, command), 409)
        assert [call.endpoint for call in pooled.fake.calls] == ["files.upload.chunk"]
        assert state(pooled) == before
        hang.release()
        answer = first.result(timeout=TIMEOUT)
    assert answer.status == 200 and answer.header("X-Goog-Upload-Status") == "active"
    complete(pooled, upload, HALF)


# --- 5. starts that are refused before anything is sent -------------------------------------------

def edited(name: str, *values: str) -> list[tuple[str, str]]:
    """A start's headers with `name` removed, then given `values` (none: left out)."""
    headers = [(n, v) for n, v in start_headers(None, len(DATA)) if n.lower() != name.lower()]
    return headers + [(name, value) for value in values]


BAD_START_HEADERS = {
    "no-protocol": edited("X-Goog-Upload-Protocol"),
    "protocol-multipart": edited("X-Goog-Upload-Protocol", "multipart"),
    "protocol-raw": edited("X-Goog-Upload-Protocol", "raw"),
    "no-command": edited("X-Goog-Upload-Command"),
    "command-upload": edited("X-Goog-Upload-Command", "upload"),
    "command-start-upload": edited("X-Goog-Upload-Command", "start, upload"),
    "no-length": edited("X-Goog-Upload-Header-Content-Length"),
    "length-empty": edited("X-Goog-Upload-Header-Content-Length", ""),
    "length-negative": edited("X-Goog-Upload-Header-Content-Length", "-1"),
    "length-plus-signed": edited("X-Goog-Upload-Header-Content-Length", "+5000"),
    "length-words": edited("X-Goog-Upload-Header-Content-Length", "five thousand"),
    "length-float": edited("X-Goog-Upload-Header-Content-Length", "5000.0"),
    "length-hex": edited("X-Goog-Upload-Header-Content-Length", "0x1388"),
    "length-exponent": edited("X-Goog-Upload-Header-Content-Length", "5e3"),
    "length-superscript": edited("X-Goog-Upload-Header-Content-Length", "\u00b9"),
    "length-16-digits": edited("X-Goog-Upload-Header-Content-Length", "1" * 16),
    "length-twice": edited("X-Goog-Upload-Header-Content-Length", "5000", "5000"),
    "mime-no-slash": edited("X-Goog-Upload-Header-Content-Type", "text"),
    "mime-no-subtype": edited("X-Goog-Upload-Header-Content-Type", "text/"),
    "mime-no-type": edited("X-Goog-Upload-Header-Content-Type", "/plain"),
    "mime-two-slashes": edited("X-Goog-Upload-Header-Content-Type", "text/plain/x"),
    "mime-parameters": edited("X-Goog-Upload-Header-Content-Type", "text/plain; charset=utf-8"),
    "mime-space": edited("X-Goog-Upload-Header-Content-Type", "text /plain"),
    "mime-quoted": edited("X-Goog-Upload-Header-Content-Type", '"text/plain"'),
    "mime-latin1": edited("X-Goog-Upload-Header-Content-Type", "text/pl\u00e4in"),
    "mime-too-long": edited("X-Goog-Upload-Header-Content-Type", "a" * 128 + "/plain"),
    "mime-twice": edited("X-Goog-Upload-Header-Content-Type", "text/plain", "image/png"),
}
BAD_START_BODIES = {
    "top-level-name": {"file": {}, "name": "files/mine"},
    "top-level-metadata": {"metadata": {"displayName": "x"}},
    "capitalised-file": {"File": {"displayName": "x"}},
    "file-uri": {"file": {"uri": "https://generativelanguage.googleapis.com/v1beta/files/abc"}},
    "file-download-uri": {"file": {"downloadUri": "https://evil.example/x"}},
    "file-state": {"file": {"state": "ACTIVE"}},
    "file-source": {"file": {"source": "GENERATED"}},
    "file-sha256": {"file": {"sha256Hash": "AAAA"}},
    "file-expiration": {"file": {"expirationTime": "2099-01-01T00:00:00Z"}},
    "file-create-time": {"file": {"createTime": "2020-01-01T00:00:00Z"}},
    "file-video-metadata": {"file": {"videoMetadata": {"videoDuration": "1s"}}},
    "file-error": {"file": {"error": {"code": 0}}},
    "file-capitalised-field": {"file": {"DisplayName": "x"}},
    "file-dashed-field": {"file": {"display-name": "x"}},
    "file-a-list": {"file": [{"displayName": "x"}]},
    "file-a-string": {"file": "report.pdf"},
    "display-name-a-number": {"file": {"displayName": 5}},
    "display-name-an-object": {"file": {"displayName": {"text": "x"}}},
    "display-name-too-long": {"file": {"displayName": "x" * 513}},
    "mime-type-not-one": {"file": {"mimeType": "text"}},
    "mime-type-null": {"file": {"mimeType": None}},
    "a-list": b'[{"file": {}}]',
    "a-string": b'"file"',
    "null": b"null",
    "not-json": b'{"file": {',
    "nan": b'{"file": {"displayName": NaN}}',
}
NO_KEY_STARTS = ["missing", "unknown", "google-key", "revoked"]


def assert_start_refused(stack: ProxyStack, answer: Answer, status: int, google_status: str | None = None):
    refused(stack, answer, status, google_status, final=False)
    assert_no_upstream_call(stack)


@pytest.mark.parametrize("case", list(BAD_START_HEADERS))
def test_a_start_with_bad_upload_headers_is_400_before_the_upstream(pooled, case):
    before = state(pooled)
    headers = [("x-goog-api-key", pooled.vault_key), *BAD_START_HEADERS[case]]
    assert_start_refused(pooled, start(pooled, headers=headers), 400, "INVALID_ARGUMENT")
    assert state(pooled) == before


@pytest.mark.parametrize("case", list(BAD_START_BODIES))
def test_a_start_body_with_anything_but_a_name_and_type_is_400_before_the_upstream(pooled, case):
    before = state(pooled)
    assert_start_refused(pooled, start(pooled, body=BAD_START_BODIES[case]), 400, "INVALID_ARGUMENT")
    assert state(pooled) == before


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/json; "
                                          "charset=latin-1"])
def test_a_start_body_not_sent_as_json_is_415(pooled, content_type):
    headers = [(n, v) for n, v in start_headers(pooled.vault_key, len(DATA)) if n != "Content-Type"]
    answer = start(pooled, headers=headers + [("Content-Type", content_type)])
    assert_start_refused(pooled, answer, 415)


# body sent -> what the fake may receive as the start body
KEPT_START_BODIES = [
    ({"file": {"displayName": "a", "mimeType": "text/plain", "sizeBytes": "5", "name": "files/chosen-by-me"}},
     {"file": {"displayName": "a", "mimeType": "text/plain"}}),
    ({"file": {"display_name": "a", "mime_type": "text/plain", "size_bytes": 5}},
     {"file": {"displayName": "a", "mimeType": "text/plain"}}),
    ({"file": {"name": "files/chosen-by-me", "sizeBytes": "999999999999"}}, {}),
    ({"file": None}, {}),
    ({}, {}),
    (b"", {}),
]


@pytest.mark.parametrize(("body", "sent"), KEPT_START_BODIES)
def test_a_start_body_reaches_google_with_only_a_display_name_and_mime_type(pooled, body, sent):
    answer = start(pooled, body=body)
    assert answer.status == 200, answer.body
    start_call, = pooled.fake.calls
    assert start_call.json == sent and start_call.headers["x-goog-upload-header-content-length"] == str(len(DATA))
    upstream = pooled.fake.uploads.latest()
    assert upstream.declared_size == len(DATA) and upstream.requested_name is None
    upload = upload_of(pooled, answer)
    assert send_chunk(pooled, upload.target, DATA[:HALF], 0).status == 200
    assert complete(pooled, upload, HALF)["name"] != "files/chosen-by-me"


@pytest.mark.parametrize("key", NO_KEY_STARTS)
def test_a_start_without_a_live_vault_key_is_401(pooled, key):
    presented = {"missing": None, "unknown": "gv-" + "x" * 43, "google-key": pooled.upstream_keys[0]}.get(key)
    if key == "revoked":
        revoked = new_key(pooled, main_caller(pooled))
        requests.delete(f"{pooled.base_url}/api-keys/{revoked.key_id}", headers=revoked.headers, timeout=TIMEOUT)
        presented = revoked.key
    before = state(pooled)
    answer = start(pooled, headers=start_headers(None, len(DATA)) + (
        [("x-goog-api-key", presented)] if presented else []))
    assert_start_refused(pooled, answer, 401, "UNAUTHENTICATED")
    assert state(pooled) == before


def multipart_body(data: bytes = DATA) -> bytes:
    return (b'--b\r\nContent-Type: application/json\r\n\r\n{"file": {"displayName": "m"}}\r\n'
            b"--b\r\nContent-Type: text/plain\r\n\r\n" + data + b"\r\n--b--\r\n")


@pytest.mark.parametrize("content_type", [
    None, "application/json", "multipart/form-data; boundary=b", "multipart/mixed; boundary=b", "multipart/related",
    "multipart/related; boundary=", "multipart/related; boundary=" + "b" * 71, 'multipart/related; boundary="a b"',
    "multipart/related; boundary=b; charset=utf-8", "multipart/related; boundary=b\u00e4"])
def test_a_multipart_upload_with_a_bad_content_type_is_400_before_the_upstream(pooled, content_type):
    before = state(pooled)
    headers = [("x-goog-api-key", pooled.vault_key)] + ([("Content-Type", content_type)] if content_type else [])
    answer = send(pooled, "POST", f"{UPLOAD_PATH}?uploadType=multipart", headers, multipart_body())
    assert_start_refused(pooled, answer, 400, "INVALID_ARGUMENT")
    assert state(pooled) == before


# --- 5b. limits: the upload size and the storage quota ------------------------------------------

@pytest.fixture(scope="module")
def tight_stack(tmp_path_factory) -> Iterator[ProxyStack]:
    yield from private_stack(tmp_path_factory, "hostile-upload-limits", 2, postgres=True, WEB_CONCURRENCY="1",
                             VAULT_MAX_UPLOAD_BYTES=str(MAX_UPLOAD), VAULT_USER_STORAGE_BYTES=str(QUOTA),
                             VAULT_SIGNUP_PER_HOUR="0")


@pytest.fixture
def tight(tight_stack) -> ProxyStack:
    tight_stack.fake.reset()
    return tight_stack


@pytest.mark.parametrize("size", [MAX_UPLOAD + 1, 10 ** 12, 10 ** 15 - 1])
def test_a_start_declaring_more_than_the_upload_limit_is_413(tight, size):
    caller = new_user(tight)
    before = state(tight, caller)
    answer = start(tight, size, caller.key)
    assert "bytes cannot be uploaded" in refused(tight, answer, 413, "INVALID_ARGUMENT", final=False)["message"]
    assert_no_upstream_call(tight)
    assert state(tight, caller) == before
    upload = open_upload(tight, MAX_UPLOAD, caller.key)  # the limit itself is allowed
    assert storage_used(tight, caller.user_id) == MAX_UPLOAD and upload.size == MAX_UPLOAD


def test_the_sdk_hears_413_for_a_file_over_the_upload_limit_and_sends_nothing(tight):
    client = genai.Client(api_key=new_user(tight).key, http_options=types.HttpOptions(base_url=tight.base_url))
    with pytest.raises(genai_errors.ClientError) as too_large:
        client.files.upload(file=io.BytesIO(b"x" * (MAX_UPLOAD + 1)), config={"mime_type": "text/plain"})
    assert too_large.value.code == 413
    assert_no_upstream_call(tight)


def test_the_storage_quota_counts_live_files_and_uploads_under_way(tight):
    caller = new_user(tight)
    data = DATA * 8  # 40,000 bytes
    held = open_upload(tight, len(data), caller.key)
    file = complete(tight, held, 0, data, caller.key)
    under_way = open_upload(tight, len(data), caller.key)
    assert send_chunk(tight, under_way.target, data[:HALF], 0).status == 200
    before = state(tight, caller)
    assert before["storage"] == 2 * len(data)
    tight.fake.reset()
    refused(tight, start(tight, QUOTA - 2 * len(data) + 1, caller.key), 413, "RESOURCE_EXHAUSTED", final=False)
    multipart = send(tight, "POST", f"{UPLOAD_PATH}?uploadType=multipart",
                     [("x-goog-api-key", caller.key), ("Content-Type", "multipart/related; boundary=b")],
                     multipart_body(b"x" * 20_000))
    refused(tight, multipart, 413, "RESOURCE_EXHAUSTED", final=False)
    assert_no_upstream_call(tight)
    assert state(tight, caller) == before
    assert open_upload(tight, QUOTA - 2 * len(data), caller.key).size == 20_000  # exactly to the quota
    assert storage_used(tight, caller.user_id) == QUOTA
    refused(tight, start(tight, 1, caller.key), 413, "RESOURCE_EXHAUSTED", final=False)
    assert send_chunk(tight, under_way.target, None, None, "cancel").status == 200  # frees its declared size
    assert open_upload(tight, len(data), caller.key).size == len(data)
    deleted = requests.delete(f"{tight.base_url}/v1beta/{file['name']}", headers={"x-goog-api-key": caller.key},
                              timeout=TIMEOUT)
    assert deleted.status_code == 200
    assert storage_used(tight, caller.user_id) == QUOTA - len(data)


def test_two_starts_at_once_cannot_share_the_last_of_the_quota(tight):
    caller = new_user(tight)
    size = QUOTA // 2 + 1
    hang = tight.fake.hang(endpoint="files.upload.start")
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(start, tight, size, caller.key)
        assert hang.wait_started(), "the first start never reached the upstream"
        second = start(tight, size, caller.key)
        hang.release()
        answer = first.result(timeout=TIMEOUT)
    assert answer.status == 200, answer.body
    refused(tight, second, 413, "RESOURCE_EXHAUSTED", final=False)
    assert [call.endpoint for call in tight.fake.calls] == ["files.upload.start"]
    assert storage_used(tight, caller.user_id) == size


def test_a_start_google_refuses_holds_no_quota(tight):
    caller = new_user(tight)
    tight.fake.enqueue(faults.invalid_argument("Invalid upload request."), endpoint="files.upload.start")
    refused(tight, start(tight, MAX_UPLOAD, caller.key), 400, "INVALID_ARGUMENT", final=False)
    assert storage_used(tight, caller.user_id) == 0
    assert open_upload(tight, MAX_UPLOAD, caller.key).size == MAX_UPLOAD


def test_a_multipart_upload_over_the_upload_limit_is_413_before_the_upstream(tight):
    caller = new_user(tight)
    body = multipart_body(b"x" * MAX_UPLOAD)
    answer = send(tight, "POST", f"{UPLOAD_PATH}?uploadType=multipart",
                  [("x-goog-api-key", caller.key), ("Content-Type", "multipart/related; boundary=b")], body)
    refused(tight, answer, 413, "INVALID_ARGUMENT", final=False)
    assert_no_upstream_call(tight)
    assert storage_used(tight, caller.user_id) == 0


# --- 6. a client that leaves in the middle of a chunk ----------------------------------------------

@pytest.mark.parametrize("leaving", ["close", "reset"])
def test_a_chunk_cut_short_is_reconciled_with_google_and_the_upload_resumes(pooled, leaving):
    data = hashlib.shake_256(b"a larger file").digest(1 << 20)
    upload = open_upload(pooled, len(data))
    pooled.fake.reset()
    sent = 6 * READ_SIZE  # whole pieces of the Vault's reads: every byte sent is relayed before the client leaves
    head = (f"POST {upload.target} HTTP/1.1\r\nHost: {host_of(pooled)}\r\nX-Goog-Upload-Command: upload, finalize"
            f"\r\nX-Goog-Upload-Offset: 0\r\nContent-Length: {len(data)}\r\n\r\n").encode()
    before = state(pooled)
    with socket.create_connection(address_of(pooled), timeout=TIMEOUT) as sock:
        sock.sendall(head + data[:sent])
        wait_until(lambda: pooled.fake.upload(upload.upstream_id).received == sent)  # relayed as it arrived
        if leaving == "reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    chunk_call = pooled.fake.calls[0]
    assert chunk_call.endpoint == "files.upload.chunk" and chunk_call.done.wait(TIMEOUT)
    assert chunk_call.client_disconnected  # the Vault dropped the upstream request with its client
    wait_until(lambda: any(call.endpoint == "files.upload.query" for call in pooled.fake.calls))
    answer = query_when_free(pooled, upload)
    assert answer.status == 200 and answer.header("X-Goog-Upload-Status") == "active"
    held = int(answer.header("X-Goog-Upload-Size-Received"))
    assert held == sent == pooled.fake.upload(upload.upstream_id).received
    assert state(pooled) == before
    complete(pooled, upload, held, data)


def test_a_chunk_that_trickles_past_the_body_deadline_is_408_and_the_upload_resumes(limited):
    upload = open_upload(limited)
    limited.fake.reset()
    head = (f"POST {upload.target} HTTP/1.1\r\nHost: {host_of(limited)}\r\nX-Goog-Upload-Command: upload, finalize"
            f"\r\nX-Goog-Upload-Offset: 0\r\nContent-Length: {len(DATA)}\r\n\r\n").encode()
    with socket.create_connection(address_of(limited), timeout=BODY_DEADLINE + TIMEOUT) as sock:
        sock.sendall(head + DATA[:HALF])  # and then nothing more: the lease must not be held forever
        answer = parse_response(read_until_closed(sock))
    refused(limited, answer, 408, "DEADLINE_EXCEEDED")
    answer = query_when_free(limited, upload)
    held = int(answer.header("X-Goog-Upload-Size-Received"))  # whatever reached Google: here, no whole piece
    assert held == limited.fake.upload(upload.upstream_id).received <= HALF
    complete(limited, upload, held)


# --- the token is a secret: nowhere but in the client's hands ----------------------------------

def test_no_upload_token_ever_reaches_the_vault_s_log(pooled):
    upload = open_upload(pooled)
    send_chunk(pooled, upload.target, DATA[:HALF], 1)
    send_chunk(pooled, upload.target, DATA[:HALF], 0)
    complete(pooled, upload, HALF)
    log = pooled.server.log()
    assert "/upload/v1beta/files" in log
    assert upload.token not in log and upload.upstream_id not in log and "upload_id=" not in log

