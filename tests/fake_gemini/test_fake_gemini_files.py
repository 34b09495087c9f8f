"""The fake's Files API: list, get and delete per key, and google-genai 3.x driving it all.

The SDK runs against its default version (v1, uploading to /upload/v1/files) and v1beta.
Upload wire details are in test_fake_gemini_uploads.py.
"""

import io
from datetime import UTC, datetime, timedelta

import pytest
import requests
from google.genai import errors, types

from tests.fake_gemini.files_client import files_url, genai_client, sha256_b64, upload_bytes

MODEL = "gemini-2.5-flash"
MIB = 1024 * 1024
FILE_403 = "You do not have permission to access the File {} or it may not exist."


# list, get, delete

def test_list_pages_through_the_callers_own_files_only(fake_gemini, owner, stranger):
    names = [fake_gemini.add_file(owner) for _ in range(12)]
    theirs = upload_bytes(fake_gemini, stranger, b"theirs")["name"]
    first = requests.get(files_url(fake_gemini), headers={"x-goog-api-key": owner}, timeout=5).json()
    assert [f["name"] for f in first["files"]] == names[:10]
    second = requests.get(files_url(fake_gemini), params={"pageToken": first["nextPageToken"], "key": owner},
                          timeout=5).json()
    assert [f["name"] for f in second["files"]] == names[10:] and "nextPageToken" not in second
    small = requests.get(files_url(fake_gemini, version="v1"), params={"pageSize": 5, "key": owner}, timeout=5)
    assert len(small.json()["files"]) == 5 and fake_gemini.last_request.endpoint == "files.list"
    assert [f["name"] for f in requests.get(files_url(fake_gemini), params={"key": stranger}, timeout=5)
            .json()["files"]] == [theirs]
    stolen = requests.get(files_url(fake_gemini), params={"pageToken": first["nextPageToken"], "key": stranger},
                          timeout=5)
    assert stolen.status_code == 400


def test_page_size_is_capped_at_100_and_an_empty_list_is_an_empty_object(fake_gemini, owner, stranger):
    for _ in range(101):
        fake_gemini.add_file(owner)
    page = requests.get(files_url(fake_gemini), params={"pageSize": 1000, "key": owner}, timeout=5).json()
    assert len(page["files"]) == 100 and "nextPageToken" in page
    empty = requests.get(files_url(fake_gemini), params={"key": stranger}, timeout=5)
    assert (empty.status_code, empty.json()) == (200, {})


def test_get_and_delete_answer_only_the_owner(fake_gemini, owner, stranger):
    file = upload_bytes(fake_gemini, owner, b"private", displayName="p")
    file_id = file["name"].removeprefix("files/")
    denied = {"error": {"code": 403, "message": FILE_403.format(file_id), "status": "PERMISSION_DENIED"}}
    for method in ("GET", "DELETE"):
        response = requests.request(method, files_url(fake_gemini, file["name"]), headers={"x-goog-api-key": stranger},
                                    timeout=5)
        assert (response.status_code, response.json()) == (403, denied)
    call = fake_gemini.last_request
    assert (call.endpoint, call.resource, call.key) == ("files.delete", file["name"], stranger)
    mine = requests.get(files_url(fake_gemini, file["name"]), headers={"x-goog-api-key": owner}, timeout=5)
    assert mine.json() == file
    gone = requests.delete(files_url(fake_gemini, file["name"]), headers={"x-goog-api-key": owner}, timeout=5)
    assert (gone.status_code, gone.json()) == (200, {})
    again = requests.get(files_url(fake_gemini, file["name"]), headers={"x-goog-api-key": owner}, timeout=5)
    assert (again.status_code, again.json()) == (403, denied)
    unknown = requests.get(files_url(fake_gemini, "files/nosuchfile"), headers={"x-goog-api-key": owner}, timeout=5)
    assert unknown.json()["error"]["message"] == FILE_403.format("nosuchfile")


def test_an_expired_file_no_longer_exists(fake_gemini, owner):
    past = (datetime.now(UTC) - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    name = fake_gemini.add_file(owner, expirationTime=past)
    assert requests.get(files_url(fake_gemini, name), params={"key": owner}, timeout=5).status_code == 403
    assert requests.get(files_url(fake_gemini), params={"key": owner}, timeout=5).json() == {}
    body = {"contents": [{"parts": [{"fileData": {"fileUri": name}}]}]}
    generate = requests.post(f"{fake_gemini.base_url}/v1beta/models/{MODEL}:generateContent", json=body,
                             params={"key": owner}, timeout=5)
    assert generate.status_code == 403


def test_other_methods_on_files_are_html_404s(fake_gemini, owner):
    for method, url in (("POST", files_url(fake_gemini, "abc")), ("PATCH", files_url(fake_gemini)),
                        ("GET", f"{fake_gemini.base_url}/upload/v1beta/files")):
        response = requests.request(method, url, headers={"x-goog-api-key": owner}, timeout=5)
        assert response.status_code == 404 and "text/html" in response.headers["Content-Type"]


# the official SDK

def test_sdk_upload_get_list_delete(fake_gemini, owner, stranger, api_version):
    client = genai_client(fake_gemini, owner, api_version)
    file = client.files.upload(file=io.BytesIO(b"hello files"), config={"mime_type": "text/plain", "display_name": "x"})
    version = api_version or "v1"
    assert (file.display_name, file.mime_type, file.size_bytes, file.state) == ("x", "text/plain", 11,
                                                                                 types.FileState.ACTIVE)
    assert file.sha256_hash == sha256_b64(b"hello files") and file.uri.endswith(f"/{version}/{file.name}")
    start_call, chunk_call = fake_gemini.calls[-2:]
    assert start_call.path == f"/upload/{version}/files" and start_call.key == owner
    assert start_call.headers["x-goog-upload-header-content-length"] == "11"
    assert (chunk_call.endpoint, chunk_call.key, chunk_call.body_bytes) == ("files.upload.chunk", None, 11)
    assert client.files.get(name=file.name).sha256_hash == file.sha256_hash
    more = [client.files.upload(file=io.BytesIO(b"%d" % i), config={"mime_type": "text/plain"}) for i in range(4)]
    listed = client.files.list(config={"page_size": 2})
    assert [f.name for f in listed] == [file.name] + [f.name for f in more]
    assert fake_gemini.last_request.query["pageSize"] == ["2"] and "pageToken" in fake_gemini.last_request.query
    other = genai_client(fake_gemini, stranger, api_version)
    assert list(other.files.list()) == []
    with pytest.raises(errors.ClientError) as caught:
        other.files.get(name=file.name)
    assert (caught.value.code, caught.value.status) == (403, "PERMISSION_DENIED")
    with pytest.raises(errors.ClientError):
        other.files.delete(name=file.name)
    client.files.delete(name=file.name)
    assert file.name not in [f["name"] for f in fake_gemini.files_of(owner)]


def test_sdk_generates_with_an_uploaded_file_only_for_its_owner(fake_gemini, owner, stranger, api_version):
    mine, theirs = genai_client(fake_gemini, owner, api_version), genai_client(fake_gemini, stranger, api_version)
    file = mine.files.upload(file=io.BytesIO(b"a fact"), config={"mime_type": "text/plain"})
    part = types.Part.from_uri(file_uri=file.uri, mime_type=file.mime_type)
    assert mine.models.generate_content(model=MODEL, contents=[part, "summarise"]).text == "Echo: summarise"
    with pytest.raises(errors.ClientError) as caught:
        theirs.models.generate_content(model=MODEL, contents=[part, "summarise"])
    assert caught.value.code == 403
    assert caught.value.message == FILE_403.format(file.name.removeprefix("files/"))


def test_sdk_uploads_a_multi_chunk_file(fake_gemini, owner):
    data = bytes(range(256)) * (20 * MIB // 256)
    client = genai_client(fake_gemini, owner, None)
    file = client.files.upload(file=io.BytesIO(data), config={"mime_type": "video/mp4"})
    assert (file.size_bytes, file.sha256_hash) == (len(data), sha256_b64(data))
    chunks = [c for c in fake_gemini.calls if c.endpoint == "files.upload.chunk"]
    assert [c.headers["x-goog-upload-command"] for c in chunks] == ["upload", "upload", "upload, finalize"]
    assert [c.headers["x-goog-upload-offset"] for c in chunks] == ["0", str(8 * MIB), str(16 * MIB)]
    assert fake_gemini.upload().chunks == 3
