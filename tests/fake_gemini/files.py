"""The Files API: multipart upload, list, get and delete, each file owned by one key.

`GET /{v}/files` lists only the calling key's live files (`pageSize` 10 by default, at most
100; `{}` when there are none; `nextPageToken` only when more follow). `GET` and `DELETE` on
`/{v}/files/{id}` of a file that is another key's, expired or unknown are upstream's 403
"You do not have permission to access the File {id} or it may not exist.". Resumable uploads
live in `uploads.py`.
"""

import base64
import hashlib
import json
from email.message import Message

from tests.fake_gemini import faults
from tests.fake_gemini.calls import Answer, ApiError, Call, list_owned
from tests.fake_gemini.resources import file_resource
from tests.fake_gemini.uploads import DEFAULT_MIME, display_name_of, file_metadata, mime_of, requested_name

MULTIPART_LIMIT = 32 * 1024 * 1024
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100


def multipart(call: Call) -> Answer:
    """POST /upload/{v}/files?uploadType=multipart: a JSON metadata part, then the media part."""
    if len(call.payload) > MULTIPART_LIMIT:
        raise ApiError(faults.invalid_argument(
            f"Request payload size exceeds the limit: {MULTIPART_LIMIT} bytes.", with_details=False))
    meta, media, media_type = _metadata_and_media(call)
    name = requested_name(call, meta) or call.resources.fresh_name("files")
    digest = base64.b64encode(hashlib.sha256(media).digest()).decode()
    resource = file_resource(name, call.version, mime_of(meta) or media_type or DEFAULT_MIME, len(media),
                             digest, display_name_of(meta))
    call.resources.add(call.key, resource)
    return Answer({"file": resource}, (("X-Goog-Upload-Status", "final"),))


def list_files(call: Call) -> dict:
    """GET /{v}/files: one page of the calling key's files."""
    return list_owned(call, "files", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def get_file(call: Call) -> dict:
    """GET /{v}/files/{id}."""
    return _own_file(call)


def delete_file(call: Call) -> dict:
    """DELETE /{v}/files/{id}: the file is gone for everyone; answers `{}`."""
    _own_file(call)
    call.resources.remove(call.resource)
    return {}


def split_multipart(body: bytes, boundary: str) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart body as (headers with lower-cased names, content)."""
    parts = []
    for section in body.split(b"--" + boundary.encode())[1:]:
        if section.startswith(b"--"):
            break
        parts.append(_part(section.removeprefix(b"\r\n").removeprefix(b"\n")))
    return parts


def _part(section: bytes) -> tuple[dict[str, str], bytes]:
    """One part's headers and content (CRLF line breaks, or bare LF)."""
    if section.startswith((b"\r\n", b"\n")):  # a part with no headers at all
        head, content = b"", section[2 if section.startswith(b"\r\n") else 1:]
    else:
        ends = [(at, len(blank)) for blank in (b"\r\n\r\n", b"\n\n") if (at := section.find(blank)) >= 0]
        at, size = min(ends) if ends else (len(section), 0)
        head, content = section[:at], section[at + size:]
    headers = {}
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    cut = 2 if content.endswith(b"\r\n") else 1 if content.endswith(b"\n") else 0
    return headers, content[:len(content) - cut]


def _metadata_and_media(call: Call) -> tuple[dict, bytes, str | None]:
    """(file metadata, media bytes, media part's Content-Type) of a multipart upload."""
    parts = split_multipart(call.payload, _boundary(call.headers.get("content-type", "")))
    if len(parts) not in (1, 2):
        raise ApiError(faults.invalid_argument(
            "A multipart upload needs a JSON metadata part followed by one media part.", with_details=False))
    meta = file_metadata(_json_part(parts[0][1])) if len(parts) == 2 else {}
    headers, media = parts[-1]
    return meta, media, headers.get("content-type")


def _boundary(content_type: str) -> str:
    message = Message()
    message["content-type"] = content_type
    boundary = message.get_param("boundary")
    if message.get_content_type() != "multipart/related" or not isinstance(boundary, str) or not boundary:
        raise ApiError(faults.invalid_argument(
            "A multipart upload needs Content-Type: multipart/related; boundary=...", with_details=False))
    return boundary


def _json_part(content: bytes) -> object:
    try:
        return json.loads(content)
    except ValueError as exc:
        raise ApiError(faults.invalid_argument("Invalid JSON payload received. Unexpected token.")) from exc


def _own_file(call: Call) -> dict:
    """The file in the path, or the 403 for a file the calling key may not see."""
    resource = call.resources.get(call.resource) if call.resources.owns(call.key, call.resource) else None
    if resource is None:
        raise ApiError(faults.file_denied(call.resource))
    return resource


HANDLERS = {"files.upload.multipart": multipart, "files.list": list_files, "files.get": get_file,
            "files.delete": delete_file}
