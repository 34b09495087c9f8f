"""Resumable uploads to `/upload/{v}/files`, as Google's upload server speaks them.

Start: a keyed POST with `X-Goog-Upload-Protocol: resumable`, `X-Goog-Upload-Command: start`,
`X-Goog-Upload-Header-Content-Length` / `-Content-Type` and a JSON body `{"file": {...}}`
(display name, MIME type, optional name; may be `{}`). The answer is an empty 200 whose
`X-Goog-Upload-URL` is the session URL on the fake:
`{base_url}/upload/{v}/files?upload_id=<id>&upload_protocol=resumable`.

The session URL takes `X-Goog-Upload-Command` `upload` / `upload, finalize` / `finalize`
(with `X-Goog-Upload-Offset`), `query` and `cancel`. The upload_id is the credential there:
a key sent along is ignored. Chunk bodies stream in 64 KiB pieces into a running sha256 and
byte count, so an upload never sits in memory whatever its size. Finalize stores the File as
owned by the key that started the upload and answers `{"file": {...}}`.

Errors on the session URL, all in Google's JSON envelope: an unknown, finished or
cancelled upload_id is a 404; a wrong offset is a 400 that leaves the upload active (answered
with `X-Goog-Upload-Size-Received`, so the client can resume); a finalize whose byte count
differs from the declared length is a 400 that kills the upload. Fatal answers carry
`X-Goog-Upload-Status: final`, so google-genai stops at once instead of retrying.
"""

import base64
import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass, field

from tests.fake_gemini import faults
from tests.fake_gemini.calls import Answer, ApiError, Call, Headers, require_object
from tests.fake_gemini.resources import file_resource
from tests.fake_gemini.wire import ClientGone

GRANULARITY = 8 * 1024 * 1024
DEFAULT_MIME = "application/octet-stream"
FILE_ID = re.compile(r"^files/[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
CHUNK_COMMANDS = ({"upload"}, {"upload", "finalize"}, {"finalize"})
FINAL = (("X-Goog-Upload-Status", "final"),)


@dataclass
class Upload:
    """One resumable upload, bound to the key (the project) that started it.

    `received` counts the bytes received so far and `chunks` the session calls that sent
    them. `state` is "active", then "final" (the File `file_name` was stored), "cancelled"
    or "failed" (a finalize with the wrong size); only an active upload answers, the others
    are 404s. The bytes themselves are never kept: only their running sha256.
    """

    upload_id: str
    key: str
    version: str
    declared_size: int | None
    mime_type: str | None
    display_name: str | None = None
    requested_name: str | None = None
    received: int = 0
    chunks: int = 0
    state: str = "active"
    file_name: str | None = None
    started: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _hash: object = field(default_factory=hashlib.sha256, repr=False)

    def add(self, piece: bytes) -> None:
        """Count and hash one piece of the upload."""
        self._hash.update(piece)
        self.received += len(piece)

    @property
    def sha256_b64(self) -> str:
        """Base64 of the sha256 of every byte received so far (the File's `sha256Hash`)."""
        return base64.b64encode(self._hash.digest()).decode()


class Uploads:
    """The fake's upload sessions by upload_id; finished ones stay so tests can inspect them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, Upload] = {}

    def start(self, key: str, version: str, declared_size: int | None, mime_type: str | None,
              display_name: str | None = None, requested_name: str | None = None) -> Upload:
        """Open an upload for `key` under a fresh, unguessable upload_id."""
        upload = Upload(secrets.token_urlsafe(48), key, version, declared_size, mime_type,
                        display_name, requested_name)
        with self._lock:
            self._by_id[upload.upload_id] = upload
        return upload

    def get(self, upload_id: str) -> Upload | None:
        """The upload with this id, in whatever state, or None."""
        with self._lock:
            return self._by_id.get(upload_id)

    def received(self, upload_id: str) -> int:
        """How many bytes the upload has received so far (KeyError if the id is unknown)."""
        upload = self.get(upload_id)
        if upload is None:
            raise KeyError(upload_id)
        return upload.received

    def all(self) -> list[Upload]:
        """Every upload started so far, oldest first."""
        with self._lock:
            return list(self._by_id.values())

    def for_key(self, key: str) -> list[Upload]:
        """The uploads `key` started, oldest first."""
        return [u for u in self.all() if u.key == key]

    def latest(self) -> Upload | None:
        """The upload started last, or None (handy when a relay rewrote the session URL)."""
        uploads = self.all()
        return uploads[-1] if uploads else None

    def clear(self) -> None:
        """Forget every upload."""
        with self._lock:
            self._by_id.clear()


def session_url(base_url: str, version: str, upload_id: str) -> str:
    """The session URL the start answer hands out, on the fake itself."""
    return f"{base_url}/upload/{version}/files?upload_id={upload_id}&upload_protocol=resumable"


def start(call: Call) -> Answer:
    """POST /upload/{v}/files (resumable start): open an upload, answer with its session URL."""
    _require_resumable_start(call)
    meta = file_metadata(call.body)
    upload = call.uploads.start(call.key, call.version, _declared_size(call, meta),
                                call.headers.get("x-goog-upload-header-content-type") or mime_of(meta),
                                display_name_of(meta), requested_name(call, meta))
    url = session_url(call.base_url, call.version, upload.upload_id)
    return Answer(None, (("X-Goog-Upload-Status", "active"), ("X-Goog-Upload-URL", url),
                         ("X-Goog-Upload-Control-URL", url),
                         ("X-Goog-Upload-Chunk-Granularity", str(GRANULARITY)),
                         ("X-GUploader-UploadID", upload.upload_id)))


def chunk(call: Call) -> Answer:
    """POST on the session URL with `upload`, `finalize` or both: take bytes, maybe finish."""
    upload = _session(call)
    with upload.lock:
        _require_active(upload)
        command = _command(call, upload)
        if "upload" in command:
            _check_offset(call, upload)
            _receive(call, upload)
        upload.chunks += 1
        if "finalize" in command:
            return _finalize(call, upload)
        return Answer(None, _status(upload, "active"))


def query(call: Call) -> Answer:
    """`X-Goog-Upload-Command: query`: how many bytes the upload has received."""
    upload = _session(call)
    return Answer(None, _status(upload, "active") + (("X-Goog-Upload-Size-Received", str(upload.received)),))


def cancel(call: Call) -> Answer:
    """`X-Goog-Upload-Command: cancel`: the upload ends and its id is dead."""
    upload = _session(call)
    with upload.lock:
        _require_active(upload)
        upload.state = "cancelled"
    return Answer(None, _status(upload, "cancelled"))


def file_metadata(body: object) -> dict:
    """The `file` object of an upload's metadata (`{}` when absent)."""
    meta = require_object(body).get("file") or {}
    if not isinstance(meta, dict):
        raise ApiError(faults.invalid_argument('Invalid JSON payload received. Unknown name "file": '
                                               "Proto field is not repeating, cannot start list."))
    return meta


def mime_of(meta: dict) -> str | None:
    """The MIME type the metadata names (camelCase or snake_case)."""
    return meta.get("mimeType") or meta.get("mime_type")


def display_name_of(meta: dict) -> str | None:
    """The display name the metadata names (camelCase or snake_case)."""
    return meta.get("displayName") or meta.get("display_name")


def requested_name(call: Call, meta: dict) -> str | None:
    """The `files/...` name the client asked for, checked as upstream does; None to mint one."""
    name = meta.get("name")
    if not name:
        return None
    name = name if str(name).startswith("files/") else f"files/{name}"
    if not FILE_ID.match(name):
        raise ApiError(faults.invalid_argument(
            f"Invalid file name {name!r}: it must be files/ followed by up to 40 lowercase letters, "
            "digits or dashes, not starting or ending with a dash.", with_details=False))
    if call.resources.get(name) is not None:
        raise ApiError(faults.already_exists(name))
    return name


def _require_resumable_start(call: Call) -> None:
    protocol = call.headers.get("x-goog-upload-protocol") or call.param("uploadType") or ""
    command = call.headers.get("x-goog-upload-command", "")
    if protocol.lower() != "resumable" or command.strip().lower() != "start":
        raise ApiError(faults.invalid_argument(
            "Upload requests need X-Goog-Upload-Protocol: resumable with X-Goog-Upload-Command: start, "
            "or X-Goog-Upload-Protocol: multipart.", with_details=False))


def _declared_size(call: Call, meta: dict) -> int | None:
    raw = call.headers.get("x-goog-upload-header-content-length") or meta.get("sizeBytes") or meta.get("size_bytes")
    if raw is None or raw == "":
        return None
    try:
        size = int(raw)
    except (TypeError, ValueError):
        size = -1
    if size < 0:
        raise ApiError(faults.invalid_argument(f"Invalid upload length {raw!r}.", with_details=False))
    return size


def _session(call: Call) -> Upload:
    upload = call.uploads.get(call.param("upload_id") or "")
    if upload is None:
        raise ApiError(faults.upload_not_found(), FINAL)
    _require_active(upload)
    return upload


def _require_active(upload: Upload) -> None:
    if upload.state != "active":
        raise ApiError(faults.upload_not_found(), FINAL + (("X-GUploader-UploadID", upload.upload_id),))


def _command(call: Call, upload: Upload) -> set[str]:
    raw = call.headers.get("x-goog-upload-command", "")
    words = {w.strip().lower() for w in raw.split(",") if w.strip()}
    if words not in CHUNK_COMMANDS:
        raise ApiError(faults.invalid_argument(f"Invalid X-Goog-Upload-Command {raw!r}.", with_details=False),
                       _status(upload, "active"))
    return words


def _check_offset(call: Call, upload: Upload) -> None:
    raw = call.headers.get("x-goog-upload-offset")
    if raw is None or raw.strip() != str(upload.received):
        raise ApiError(faults.upload_offset_mismatch(upload.received, raw),
                       _status(upload, "active") + (("X-Goog-Upload-Size-Received", str(upload.received)),))


def _receive(call: Call, upload: Upload) -> None:
    """Stream the chunk's body into the upload, piece by piece."""
    for piece in call.body_reader.pieces():
        upload.add(piece)
    if call.body_reader.truncated:
        raise ClientGone()


def _finalize(call: Call, upload: Upload) -> Answer:
    if upload.declared_size is not None and upload.received != upload.declared_size:
        upload.state = "failed"
        raise ApiError(faults.upload_size_mismatch(upload.declared_size, upload.received), _status(upload, "final"))
    name = upload.requested_name or call.resources.fresh_name("files")
    resource = file_resource(name, upload.version, upload.mime_type or DEFAULT_MIME, upload.received,
                             upload.sha256_b64, upload.display_name)
    try:
        if call.resources.get(name) is not None:
            raise ValueError(name)
        call.resources.add(upload.key, resource)
    except ValueError as exc:  # the name was taken while the upload ran
        upload.state = "failed"
        raise ApiError(faults.already_exists(name), _status(upload, "final")) from exc
    upload.state, upload.file_name = "final", name
    return Answer({"file": resource}, _status(upload, "final"))


def _status(upload: Upload, status: str) -> Headers:
    return (("X-Goog-Upload-Status", status), ("X-GUploader-UploadID", upload.upload_id))


HANDLERS = {"files.upload.start": start, "files.upload.chunk": chunk, "files.upload.query": query,
            "files.upload.cancel": cancel}
