"""The metadata part of a multipart upload is rebuilt by the Vault; the file's bytes pass untouched."""

import json

import pytest

from vault.errors import BadRequest
from vault.resources.multipart import rewrite

BOUNDARY = "b0und4ry"


def body(metadata: bytes, data: bytes) -> bytes:
    return (b"--b0und4ry\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n" + metadata
            + b"\r\n--b0und4ry\r\nContent-Type: text/plain\r\n\r\n" + data + b"\r\n--b0und4ry--\r\n")


def pieces(raw: bytes, size: int):
    return iter([raw[i:i + size] for i in range(0, len(raw), size)])


def keep_display_name(metadata: object) -> dict:
    described = metadata.get("file", {}) if isinstance(metadata, dict) else {}
    return {"file": {"displayName": described.get("displayName", "")}}


@pytest.mark.parametrize("size", [1, 7, 64, 100_000])
def test_the_metadata_is_replaced_and_the_rest_streams_unchanged(size):
    data = bytes(range(256)) * 50
    raw = body(b'{"file": {"displayName": "x", "name": "files/chosen"}}', data)
    rewritten = rewrite(pieces(raw, size), len(raw), BOUNDARY, keep_display_name)
    sent = b"".join(rewritten.pieces)
    assert len(sent) == rewritten.length
    head, _, rest = sent.partition(b"\r\n\r\n")
    assert json.loads(rest.split(b"\r\n--b0und4ry")[0]) == {"file": {"displayName": "x"}}
    assert b"files/chosen" not in sent and sent.endswith(b"\r\n" + data + b"\r\n--b0und4ry--\r\n")


@pytest.mark.parametrize("raw", [
    b"no boundary at all",
    b"--b0und4ry\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b0und4ry--\r\n",
    b"--b0und4ry\r\nContent-Type: application/json\r\n\r\n{not json\r\n--b0und4ry--\r\n",
    b"--b0und4ry\r\nContent-Type: application/json\r\n\r\n" + b" " * 70_000 + b"{}\r\n--b0und4ry--\r\n",
    b"--b0und4ry\r\nContent-Type: application/json\r\n\r\n{}",
])
def test_a_body_that_is_not_metadata_then_bytes_is_refused(raw):
    with pytest.raises(BadRequest):
        rewritten = rewrite(pieces(raw, 10), len(raw), BOUNDARY, keep_display_name)
        b"".join(rewritten.pieces)
