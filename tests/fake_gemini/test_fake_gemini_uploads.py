"""The fake's upload endpoints: resumable sessions and multipart, on the wire.

Uploaded bytes stream through the fake in pieces: a 50 MB upload never sits in its memory.
The google-genai side of uploads is in test_fake_gemini_files.py.
"""

import base64
import gc
import hashlib
import re
import socket
import time
import tracemalloc
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.fake_gemini import faults, files
from tests.fake_gemini.files_client import (
    multipart_body,
    post_multipart,
    send_chunk,
    session_command,
    sha256_b64,
    start_upload,
    upload_bytes,
)
from tests.fake_gemini.log import BODY_KEEP

MIB = 1024 * 1024
FILE_NAME = re.compile(r"^files/[a-z0-9]{12}$")


# resumable upload, on the wire

@pytest.mark.parametrize("version", ["v1beta", "v1"])
def test_start_answers_with_a_session_url_on_the_fake(fake_gemini, owner, version):
    response = start_upload(fake_gemini, owner, 5, meta={"displayName": "notes"}, version=version)
    assert (response.status_code, response.content) == (200, b"")
    headers = response.headers
    url = headers["X-Goog-Upload-URL"]
    parts = urlsplit(url)
    upload_id = parse_qs(parts.query)["upload_id"][0]
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{fake_gemini.base_url}/upload/{version}/files"
    assert parse_qs(parts.query) == {"upload_id": [upload_id], "upload_protocol": ["resumable"]}
    assert len(upload_id) >= 48
    assert headers["X-Goog-Upload-Status"] == "active"
    assert headers["X-Goog-Upload-Chunk-Granularity"] == "8388608"
    assert headers["X-GUploader-UploadID"] == upload_id
    assert headers["X-Goog-Upload-Control-URL"] == url
    call = fake_gemini.last_request
    assert (call.endpoint, call.key, call.version, call.json) == ("files.upload.start", owner, version,
                                                                  {"file": {"displayName": "notes"}})
    session = fake_gemini.upload(upload_id)
    assert (session.key, session.declared_size, session.mime_type, session.received) == (owner, 5, "text/plain", 0)
    assert fake_gemini.upload() is session


def test_start_takes_the_key_from_the_query_and_needs_one(fake_gemini, owner):
    response = requests.post(f"{fake_gemini.base_url}/upload/v1beta/files", params={"key": owner}, json={},
                             headers={"X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start"},
                             timeout=5)
    assert response.status_code == 200 and fake_gemini.upload().declared_size is None
    anonymous = start_upload(fake_gemini, None, 5)
    assert anonymous.status_code == 403 and "X-Goog-Upload-URL" not in anonymous.headers
    assert start_upload(fake_gemini, "not-a-key", 5).json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"


@pytest.mark.parametrize("headers", [{"X-Goog-Upload-Protocol": "raw"}, {"X-Goog-Upload-Command": "upload"},
                                     {"X-Goog-Upload-Header-Content-Length": "-3"}])
def test_a_malformed_start_is_a_400(fake_gemini, owner, headers):
    response = start_upload(fake_gemini, owner, 5, headers=headers)
    assert response.status_code == 400 and response.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_chunks_then_finalize_store_the_file_for_the_starting_key(fake_gemini, owner):
    data = b"first half|second half"
    meta = {"display_name": "halves", "mime_type": "ignored/x"}
    url = start_upload(fake_gemini, owner, len(data), meta=meta).headers["X-Goog-Upload-URL"]
    first = send_chunk(url, data[:11], 0, "upload")
    assert (first.status_code, first.content, first.headers["X-Goog-Upload-Status"]) == (200, b"", "active")
    assert fake_gemini.upload().received == 11
    final = send_chunk(url, data[11:], 11)
    assert final.status_code == 200 and final.headers["X-Goog-Upload-Status"] == "final"
    assert final.headers["Content-Type"] == "application/json; charset=UTF-8"
    file = final.json()["file"]
    assert FILE_NAME.match(file["name"])
    file_id = file["name"].removeprefix("files/")
    assert file == {"name": file["name"], "displayName": "halves", "mimeType": "text/plain",
                    "sizeBytes": str(len(data)), "createTime": file["createTime"],
                    "updateTime": file["createTime"], "expirationTime": file["expirationTime"],
                    "sha256Hash": sha256_b64(data),
                    "uri": f"https://generativelanguage.googleapis.com/v1beta/files/{file_id}",
                    "state": "ACTIVE", "source": "UPLOADED"}
    lifetime = datetime.fromisoformat(file["expirationTime"]) - datetime.fromisoformat(file["createTime"])
    assert lifetime == timedelta(hours=48)
    assert fake_gemini.files_of(owner) == [file]
    session = fake_gemini.upload()
    assert (session.state, session.file_name, session.chunks, session.received) == ("final", file["name"], 2, 22)
    chunks = [c for c in fake_gemini.calls if c.endpoint == "files.upload.chunk"]
    assert [(c.key, c.raw_body, c.body_bytes) for c in chunks] == [(None, data[:11], 11), (None, data[11:], 11)]


def test_a_key_on_a_chunk_is_ignored(fake_gemini, owner, stranger):
    url = start_upload(fake_gemini, owner, 3).headers["X-Goog-Upload-URL"]
    assert send_chunk(url, b"abc", 0, headers={"x-goog-api-key": "not-even-a-key"}).status_code == 200
    call = fake_gemini.last_request
    assert call.key is None and call.credentials == [("header", "not-even-a-key")]
    other = start_upload(fake_gemini, owner, 1).headers["X-Goog-Upload-URL"]
    assert send_chunk(f"{other}&key={stranger}", b"z", 0).status_code == 200
    assert len(fake_gemini.files_of(owner)) == 2 and fake_gemini.files_of(stranger) == []


def test_a_wrong_offset_is_a_400_and_the_upload_can_resume(fake_gemini, owner):
    url = start_upload(fake_gemini, owner, 6).headers["X-Goog-Upload-URL"]
    assert send_chunk(url, b"abc", 0, "upload").status_code == 200
    for offset in (0, 2, 4):
        wrong = send_chunk(url, b"def", offset)
        assert wrong.status_code == 400
        assert wrong.json()["error"]["status"] == "INVALID_ARGUMENT"
        assert wrong.headers["X-Goog-Upload-Status"] == "active"
        assert wrong.headers["X-Goog-Upload-Size-Received"] == "3"
    missing = requests.post(url, data=b"def", headers={"X-Goog-Upload-Command": "upload"}, timeout=5)
    assert missing.status_code == 400
    query = session_command(url, "query")
    assert (query.status_code, query.headers["X-Goog-Upload-Status"], query.headers["X-Goog-Upload-Size-Received"]) \
        == (200, "active", "3")
    assert fake_gemini.last_request.endpoint == "files.upload.query"
    assert send_chunk(url, b"def", 3).json()["file"]["sha256Hash"] == sha256_b64(b"abcdef")


@pytest.mark.parametrize(("declared", "sent"), [(10, b"short"), (2, b"too long")])
def test_finalize_with_another_size_than_declared_is_a_400_and_kills_the_upload(fake_gemini, owner, declared, sent):
    url = start_upload(fake_gemini, owner, declared).headers["X-Goog-Upload-URL"]
    response = send_chunk(url, sent, 0)
    assert response.status_code == 400 and response.headers["X-Goog-Upload-Status"] == "final"
    assert response.json()["error"]["message"] == faults.upload_size_mismatch(declared, len(sent)).error["message"]
    assert fake_gemini.upload().state == "failed" and fake_gemini.files_of(owner) == []
    assert session_command(url, "query").status_code == 404


def test_an_undeclared_size_takes_whatever_arrives(fake_gemini, owner):
    url = start_upload(fake_gemini, owner, None).headers["X-Goog-Upload-URL"]
    assert send_chunk(url, b"12345", 0, "upload").status_code == 200
    assert send_chunk(url, b"", 5, "finalize").json()["file"]["sizeBytes"] == "5"


@pytest.mark.parametrize("ending", ["finalize", "cancel"])
def test_the_upload_id_is_dead_after_finalize_or_cancel(fake_gemini, owner, ending):
    url = start_upload(fake_gemini, owner, 2).headers["X-Goog-Upload-URL"]
    if ending == "finalize":
        assert send_chunk(url, b"ok", 0).status_code == 200
    else:
        cancelled = session_command(url, "cancel")
        assert (cancelled.status_code, cancelled.headers["X-Goog-Upload-Status"]) == (200, "cancelled")
        assert fake_gemini.last_request.endpoint == "files.upload.cancel"
    late_calls = (send_chunk(url, b"ok", 0), send_chunk(url, b"", 2, "finalize"), session_command(url, "query"),
                  session_command(url, "cancel"))
    for late in late_calls:
        assert late.status_code == 404 and late.json()["error"]["status"] == "NOT_FOUND"
        assert late.headers["X-Goog-Upload-Status"] == "final"
    assert len(fake_gemini.files_of(owner)) == (1 if ending == "finalize" else 0)


def test_an_unknown_upload_id_is_a_404_and_the_connection_survives(fake_gemini):
    url = f"{fake_gemini.base_url}/upload/v1beta/files?upload_id=guessed&upload_protocol=resumable"
    with requests.Session() as session:
        response = send_chunk(url, b"x" * (2 * MIB), 0, session=session)
        assert response.status_code == 404 and response.json()["error"]["code"] == 404
        assert session.get(f"{fake_gemini.base_url}/v1beta/models", headers={"x-goog-api-key": "AIza-k"},
                           timeout=5).status_code == 200
    assert fake_gemini.calls[0].body_bytes == 2 * MIB
    assert fake_gemini.total_connections == 1


def test_a_chunked_request_body_streams_too(fake_gemini, owner):
    data = [b"a" * 100_000, b"b" * 50_000, b"c"]
    url = start_upload(fake_gemini, owner, sum(map(len, data))).headers["X-Goog-Upload-URL"]
    response = send_chunk(url, iter(data), 0)
    assert response.json()["file"]["sha256Hash"] == sha256_b64(b"".join(data))
    assert fake_gemini.last_request.headers["transfer-encoding"] == "chunked"
    assert len(fake_gemini.last_request.raw_body) == BODY_KEEP


def test_a_client_that_leaves_mid_chunk_keeps_what_arrived(fake_gemini, owner):
    url = start_upload(fake_gemini, owner, 1000).headers["X-Goog-Upload-URL"]
    target = urlsplit(url)
    with socket.create_connection((target.hostname, target.port), timeout=5) as sock:
        sock.sendall(f"POST {target.path}?{target.query} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
                     "X-Goog-Upload-Command: upload, finalize\r\nX-Goog-Upload-Offset: 0\r\n\r\n".encode()
                     + b"q" * 400)
        time.sleep(0.1)
    assert fake_gemini.wait_disconnect()
    assert session_command(url, "query").headers["X-Goog-Upload-Size-Received"] == "400"
    assert send_chunk(url, b"q" * 600, 400).json()["file"]["sha256Hash"] == sha256_b64(b"q" * 1000)


def test_a_scripted_fault_on_a_chunk_leaves_the_upload_untouched(fake_gemini, owner):
    url = start_upload(fake_gemini, owner, 4).headers["X-Goog-Upload-URL"]
    fake_gemini.enqueue(faults.unavailable(), endpoint="files.upload.chunk")
    assert send_chunk(url, b"data", 0).status_code == 503
    assert fake_gemini.upload().received == 0
    assert send_chunk(url, b"data", 0).status_code == 200


def test_a_requested_name_is_honoured_once(fake_gemini, owner, stranger):
    assert upload_bytes(fake_gemini, owner, b"x", name="my-report")["name"] == "files/my-report"
    taken = start_upload(fake_gemini, stranger, 1, meta={"name": "files/my-report"})
    assert taken.status_code == 409 and taken.json()["error"]["status"] == "ALREADY_EXISTS"
    assert start_upload(fake_gemini, owner, 1, meta={"name": "Bad_Name"}).status_code == 400


# big uploads stay out of memory

def test_a_50_mb_upload_in_8_mib_chunks_keeps_the_fake_s_memory_bounded(fake_gemini, owner):
    size, chunk = 50 * 1000 * 1000, 8 * MIB
    url = start_upload(fake_gemini, owner, size).headers["X-Goog-Upload-URL"]
    upload_id = parse_qs(urlsplit(url).query)["upload_id"][0]
    digest = hashlib.sha256()
    gc.collect()
    tracemalloc.start()
    try:
        offset = 0
        while offset < size:
            piece = bytes([offset // chunk % 251]) * min(chunk, size - offset)
            digest.update(piece)
            last = offset + len(piece) >= size
            response = send_chunk(url, piece, offset, "upload, finalize" if last else "upload")
            offset += len(piece)
            del piece
            assert response.status_code == 200 and fake_gemini.uploads.received(upload_id) == offset
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * chunk, f"peak {peak / MIB:.1f} MiB while uploading {size / MIB:.0f} MiB"
    file = response.json()["file"]
    assert (file["sizeBytes"], file["sha256Hash"]) == (str(size), base64.b64encode(digest.digest()).decode())
    chunks = [c for c in fake_gemini.calls if c.endpoint == "files.upload.chunk"]
    assert len(chunks) == 6 and sum(c.body_bytes for c in chunks) == size
    assert max(len(c.raw_body) for c in fake_gemini.calls) <= BODY_KEEP


# multipart upload

def test_a_multipart_upload_stores_the_file(fake_gemini, owner):
    media = b"%PDF-1.4\r\n\r\nbinary \x00\xff body\r\n"
    response = post_multipart(fake_gemini, owner, multipart_body({"file": {"displayName": "doc"}}, media))
    assert response.status_code == 200 and response.headers["X-Goog-Upload-Status"] == "final"
    file = response.json()["file"]
    assert (file["displayName"], file["mimeType"], file["sizeBytes"], file["sha256Hash"]) == (
        "doc", "application/pdf", str(len(media)), sha256_b64(media))
    assert fake_gemini.files_of(owner) == [file]
    call = fake_gemini.last_request
    assert (call.endpoint, call.key, call.json) == ("files.upload.multipart", owner, None)


def test_a_multipart_upload_may_be_media_only_and_name_the_protocol_in_a_header(fake_gemini, owner):
    response = requests.post(f"{fake_gemini.base_url}/upload/v1/files", data=multipart_body(None, b"hi", "b"),
                             headers={"x-goog-api-key": owner, "X-Goog-Upload-Protocol": "multipart",
                                      "Content-Type": 'multipart/related; boundary="b"'}, timeout=5)
    file = response.json()["file"]
    assert (file["mimeType"], file["sizeBytes"]) == ("application/pdf", "2")
    assert file["uri"].startswith("https://generativelanguage.googleapis.com/v1/files/")


@pytest.mark.parametrize(("body", "content_type"), [
    (multipart_body({"file": {}}, b"x"), "application/json"),
    (multipart_body({"file": {}}, b"x"), "multipart/related"),
    (b"--fake-boundary-123\r\n\r\nnot json\r\n--fake-boundary-123\r\n\r\nx\r\n--fake-boundary-123--",
     "multipart/related; boundary=fake-boundary-123"),
    (b"no parts at all", "multipart/related; boundary=fake-boundary-123"),
])
def test_a_malformed_multipart_upload_is_a_400(fake_gemini, owner, body, content_type):
    response = post_multipart(fake_gemini, owner, body, content_type)
    assert response.status_code == 400 and fake_gemini.files_of(owner) == []


def test_a_multipart_upload_past_the_cap_is_a_400_and_only_its_head_is_kept(fake_gemini, owner, monkeypatch):
    monkeypatch.setattr(files, "MULTIPART_LIMIT", 100 * 1024)
    body = multipart_body({"file": {}}, b"m" * (300 * 1024))
    response = post_multipart(fake_gemini, owner, body)
    assert response.status_code == 400 and "exceeds the limit" in response.json()["error"]["message"]
    call = fake_gemini.last_request
    assert call.done.wait(5)
    # only the head is kept; how much of the rest is drained before the client hangs up is a race
    assert len(call.raw_body) == BODY_KEEP and 100 * 1024 < call.body_bytes <= len(body)
    assert fake_gemini.files_of(owner) == []
