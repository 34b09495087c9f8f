"""Every spelling of a file or cache reference is found; a malformed claim is refused, never passed on."""

import pytest

from vault.errors import BadRequest
from vault.resources.references import references
from vault.resources.storage import extension_seconds, storage_nano

URI = "https://generativelanguage.googleapis.com/{v}/files/abc123"


@pytest.mark.parametrize("body", [
    {"contents": [{"parts": [{"fileData": {"fileUri": "files/abc123", "mimeType": "text/plain"}}]}]},
    {"contents": [{"parts": [{"file_data": {"file_uri": "files/abc123"}}]}]},
    {"contents": [{"parts": [{"fileData": {"fileUri": URI.format(v="v1beta")}}]}]},
    {"contents": [{"parts": [{"fileData": {"fileUri": URI.format(v="v1")}}]}]},
    {"contents": [{"parts": [{"fileData": {"fileUri": URI.format(v="v1alpha")}}]}]},
    {"generateContentRequest": {"contents": [{"parts": [{"fileData": {"fileUri": "files/abc123"}}]}]}},
    {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": URI.format(v="v1beta")}}]}]},
    {"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "files/abc123"}}]}]},
    {"deeply": [[[{"hidden": {"FileUri": "files/abc123"}}]]]},
])
def test_file_references_are_found_in_every_spelling(body):
    assert references(body).files == ["files/abc123"]


@pytest.mark.parametrize("body", [
    {"cachedContent": "cachedContents/c1"},
    {"cached_content": "cachedContents/c1"},
    {"extra_body": {"google": {"cached_content": "cachedContents/c1"}}},
    {"generateContentRequest": {"cachedContent": "cachedContents/c1"}},
    {"CachedContent": "cachedContents/c1"},
])
def test_cache_references_are_found_in_every_spelling(body):
    assert references(body).caches == ["cachedContents/c1"]


@pytest.mark.parametrize("value", [
    "files/ABC", "files/abc/def", "files/abc?x=1", "files%2Fabc", "FILES/abc", " files/abc",
    "https://generativelanguage.googleapis.com/v1beta/files/abc?key=AIza", "https://generativelanguage.googleapis.com/v2/files/abc",
    "https://GENERATIVELANGUAGE.googleapis.com/v1beta/files/abc", "http://generativelanguage.googleapis.com/v1beta/files/abc",
    "https://generativelanguage.googleapis.com/v1beta/files/%61bc", "https://generativelanguage.googleapis.com/v1beta/files/../files/abc",
    "/files/abc", "v1beta/files/abc", "./files/abc", "\ufefffiles/abc", "files%252Fabc", "..\\files\\abc",
])
def test_malformed_file_claims_are_refused(value):
    with pytest.raises(BadRequest):
        references({"contents": [{"parts": [{"fileData": {"fileUri": value}}]}]})


@pytest.mark.parametrize("value", ["cachedContents/ABC", "cachedContents/a/b", "c1", "cachedContents/", "files/abc"])
def test_malformed_cache_names_are_refused(value):
    with pytest.raises(BadRequest):
        references({"cachedContent": value})


@pytest.mark.parametrize("value", ["https://www.youtube.com/watch?v=abc", "gs://bucket/files/x.pdf",
                                   "https://example.com/files/cat.png", "data:image/png;base64,AAAA"])
def test_other_uris_are_not_files_api_references(value):
    assert not references({"contents": [{"parts": [{"fileData": {"fileUri": value}}]}], "image_url": {"url": value}})


@pytest.mark.parametrize("body", [
    {"messages": [{"content": [{"type": "image_url", "image_url": "files/abc123"}]}]},
    {"messages": [{"content": [{"type": "file", "file": {"file_data": "files/abc123"}}]}]},
])
def test_bare_string_openai_parts_are_checked_too(body):
    assert references(body).files == ["files/abc123"]


def test_names_are_listed_once_in_order():
    body = {"cachedContent": "cachedContents/c1", "a": {"fileUri": "files/x1"}, "b": [{"file_uri": "files/x1"},
                                                                                   {"fileUri": "files/x2"}]}
    found = references(body)
    assert found.files == ["files/x1", "files/x2"] and found.names == ["cachedContents/c1", "files/x1", "files/x2"]


def test_storage_is_priced_per_token_hour_rounded_half_up():
    assert storage_nano(1_000_000, 3600, 1_000_000_000) == 1_000_000_000
    assert storage_nano(1000, 1800, 1_000_000_000) == 500_000
    assert storage_nano(1, 1, 1) == 0 and storage_nano(0, 3600, 10) == 0


def test_only_time_past_what_is_paid_is_charged():
    from datetime import UTC, datetime, timedelta
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert extension_seconds(None, now + timedelta(hours=1), now) == 3600
    assert extension_seconds(now + timedelta(hours=1), now + timedelta(hours=3), now) == 7200
    assert extension_seconds(now + timedelta(hours=3), now + timedelta(hours=1), now) == 0
