"""Raw-HTTP calls on the fake's Files API, as google-genai and curl users make them.

Tests of the fake use these; so can any test that drives uploads through a relay (pass the
relay's URLs and keys instead of the fake's).
"""

import base64
import hashlib
import json

import requests
from google import genai

from tests.fake_gemini.server import FakeGemini


def start_upload(fake: FakeGemini, key: str | None, size: int | None, mime: str = "text/plain",
                 meta: dict | None = None, version: str = "v1beta", headers: dict | None = None,
                 **kwargs) -> requests.Response:
    """Open a resumable upload the way google-genai does (`size` None declares no length)."""
    sent = {"X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start",
            "X-Goog-Upload-Header-Content-Type": mime}
    if size is not None:
        sent["X-Goog-Upload-Header-Content-Length"] = str(size)
    if key:
        sent["x-goog-api-key"] = key
    return requests.post(f"{fake.base_url}/upload/{version}/files", json={"file": meta or {}},
                         headers=sent | (headers or {}), timeout=5, **kwargs)


def send_chunk(url: str, data: bytes, offset: int, command: str = "upload, finalize",
               headers: dict | None = None, session: requests.Session | None = None) -> requests.Response:
    """POST bytes (or an iterable of bytes, sent chunked) to an upload session URL."""
    sent = {"X-Goog-Upload-Command": command, "X-Goog-Upload-Offset": str(offset)} | (headers or {})
    return (session or requests).post(url, data=data, headers=sent, timeout=30)


def session_command(url: str, word: str) -> requests.Response:
    """A bodiless `query` or `cancel` on an upload session URL."""
    return requests.post(url, headers={"X-Goog-Upload-Command": word}, timeout=5)


def upload_bytes(fake: FakeGemini, key: str, data: bytes, **meta) -> dict:
    """Upload `data` in one finalizing chunk; returns the File resource."""
    url = start_upload(fake, key, len(data), meta=meta).headers["X-Goog-Upload-URL"]
    return send_chunk(url, data, 0).json()["file"]


def files_url(fake: FakeGemini, name: str = "", version: str = "v1beta") -> str:
    """`/{v}/files` or `/{v}/files/{id}` on the fake."""
    return f"{fake.base_url}/{version}/files" + (f"/{name.removeprefix('files/')}" if name else "")


def genai_client(fake: FakeGemini, key: str, version: str | None) -> genai.Client:
    """A google-genai client on the fake (version None is the SDK's default, v1)."""
    options = {"base_url": fake.base_url} | ({"api_version": version} if version else {})
    return genai.Client(api_key=key, http_options=options)


def sha256_b64(data: bytes) -> str:
    """The File's `sha256Hash` for `data`."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def multipart_body(meta: dict | None, media: bytes, boundary: str = "fake-boundary-123",
                   media_type: str = "application/pdf") -> bytes:
    """A multipart/related body: a JSON metadata part (unless None), then the media part."""
    json_part = b"Content-Type: application/json; charset=UTF-8\r\n\r\n" + json.dumps(meta).encode()
    parts = [] if meta is None else [json_part]
    parts.append(f"Content-Type: {media_type}\r\n\r\n".encode() + media)
    delimiter = f"--{boundary}\r\n".encode()
    return b"".join(delimiter + part + b"\r\n" for part in parts) + f"--{boundary}--\r\n".encode()


def post_multipart(fake: FakeGemini, key: str, body: bytes, content_type: str = "multipart/related; "
                   "boundary=fake-boundary-123", params: dict | None = None) -> requests.Response:
    """POST a multipart upload with `uploadType=multipart`."""
    return requests.post(f"{fake.base_url}/upload/v1beta/files", data=body, timeout=5,
                         params={"uploadType": "multipart"} | (params or {}),
                         headers={"x-goog-api-key": key, "Content-Type": content_type})

