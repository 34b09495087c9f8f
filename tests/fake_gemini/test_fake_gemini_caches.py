"""The fake's cachedContents API: create, list, get, patch, delete, per-key ownership.

Driven with raw `requests` for the wire details and with google-genai 3.x (v1beta and its
default v1), including generation with `cached_content` by the owning key and by another.
"""

import io
import re
from datetime import UTC, datetime, timedelta

import pytest
import requests
from google.genai import errors, types

from tests.fake_gemini.caches import parse_ttl
from tests.fake_gemini.calls import ApiError
from tests.fake_gemini.files_client import genai_client
from tests.fake_gemini.server import FakeGemini

MODEL = "gemini-2.5-flash"
CACHE_NAME = re.compile(r"^cachedContents/[a-z0-9]{12}$")
CACHE_403 = {"error": {"code": 403, "message": "CachedContent not found (or permission denied)",
                       "status": "PERMISSION_DENIED"}}
BODY = {"model": f"models/{MODEL}", "displayName": "handbook",
        "contents": [{"role": "user", "parts": [{"text": "one two three four"}]}],
        "systemInstruction": {"parts": [{"text": "be brief"}]}, "ttl": "300s"}


def caches_url(fake: FakeGemini, name: str = "", version: str = "v1beta") -> str:
    """`/{v}/cachedContents` or `/{v}/cachedContents/{id}` on the fake."""
    return f"{fake.base_url}/{version}/cachedContents" + (f"/{name.removeprefix('cachedContents/')}" if name else "")


def call(method: str, url: str, key: str, body: dict | None = None, **params) -> requests.Response:
    """One keyed request with an optional JSON body."""
    return requests.request(method, url, json=body, params=params, headers={"x-goog-api-key": key}, timeout=5)


def create(fake: FakeGemini, key: str, body: dict | None = None) -> dict:
    """Create a cached content (BODY by default) and return the resource."""
    response = call("POST", caches_url(fake), key, BODY if body is None else body)
    assert response.status_code == 200, response.text
    return response.json()


def moment(stamp: str) -> datetime:
    """An RFC 3339 timestamp as a datetime."""
    return datetime.fromisoformat(stamp)


# create

def test_create_answers_the_cached_content(fake_gemini, owner):
    cache = create(fake_gemini, owner)
    assert CACHE_NAME.match(cache["name"])
    assert cache == {"name": cache["name"], "model": f"models/{MODEL}", "createTime": cache["createTime"],
                     "updateTime": cache["createTime"], "expireTime": cache["expireTime"],
                     "usageMetadata": {"totalTokenCount": 6}, "displayName": "handbook"}
    assert moment(cache["expireTime"]) - moment(cache["createTime"]) == pytest.approx(timedelta(seconds=300),
                                                                                      abs=timedelta(seconds=1))
    assert fake_gemini.cached_contents_of(owner) == [cache]
    rec = fake_gemini.last_request
    assert (rec.endpoint, rec.key, rec.model, rec.usage) == ("cachedContents.create", owner, MODEL, None)


def test_snake_case_bodies_files_and_the_default_lifetime(fake_gemini, owner):
    file = fake_gemini.add_file(owner)
    body = {"model": MODEL, "display_name": "snake",
            "contents": [{"parts": [{"file_data": {"file_uri": file}}, {"text": "read this"}]}],
            "system_instruction": {"parts": [{"text": "you are terse"}]}}
    cache = create(fake_gemini, owner, body)
    assert cache["displayName"] == "snake" and cache["usageMetadata"] == {"totalTokenCount": 258 + 2 + 3}
    assert moment(cache["expireTime"]) - moment(cache["createTime"]) == pytest.approx(timedelta(hours=1),
                                                                                      abs=timedelta(seconds=1))
    expire = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    later = create(fake_gemini, owner, {"model": MODEL, "expire_time": expire.isoformat().replace("+00:00", "Z")})
    assert moment(later["expireTime"]) == expire and later["usageMetadata"] == {"totalTokenCount": 1}


def test_create_with_another_projects_file_is_the_generate_403(fake_gemini, owner, stranger):
    file = fake_gemini.add_file(owner)
    body = {"model": MODEL, "contents": [{"parts": [{"fileData": {"fileUri": file, "mimeType": "text/plain"}}]}]}
    response = call("POST", caches_url(fake_gemini), stranger, body)
    assert response.status_code == 403
    assert response.json()["error"]["message"] == (
        f"You do not have permission to access the File {file.removeprefix('files/')} or it may not exist.")
    assert fake_gemini.cached_contents_of(stranger) == []


@pytest.mark.parametrize(("body", "status"), [
    ({"contents": []}, 400),
    ({"model": f"models/{MODEL}", "ttl": "300s", "expireTime": "2099-01-01T00:00:00Z"}, 400),
    ({"model": MODEL, "ttl": "five minutes"}, 400),
    ({"model": MODEL, "ttl": "0s"}, 400),
    ({"model": MODEL, "expireTime": "yesterday"}, 400),
    ({"model": MODEL, "expireTime": "2000-01-01T00:00:00Z"}, 400),
    ({"model": MODEL, "contents": {"parts": []}}, 400),
    ({"model": "models/gemini-embedding-001"}, 404),
    ({"model": "models/no-such-model"}, 404),
])
def test_bad_create_bodies(fake_gemini, owner, body, status):
    response = call("POST", caches_url(fake_gemini), owner, body)
    assert response.status_code == status and fake_gemini.cached_contents_of(owner) == []


# list, get, patch, delete

def test_list_pages_through_the_callers_own_caches(fake_gemini, owner, stranger):
    names = [create(fake_gemini, owner)["name"] for _ in range(12)]
    create(fake_gemini, stranger)
    first = call("GET", caches_url(fake_gemini), owner).json()
    assert [c["name"] for c in first["cachedContents"]] == names[:10]
    second = call("GET", caches_url(fake_gemini, version="v1"), owner, pageToken=first["nextPageToken"]).json()
    assert [c["name"] for c in second["cachedContents"]] == names[10:] and "nextPageToken" not in second
    assert len(call("GET", caches_url(fake_gemini), owner, pageSize=3).json()["cachedContents"]) == 3
    assert fake_gemini.last_request.endpoint == "cachedContents.list"
    assert call("GET", caches_url(fake_gemini), fake_gemini.new_key()).json() == {}
    assert call("GET", caches_url(fake_gemini), stranger, pageToken=first["nextPageToken"]).status_code == 400


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_another_key_or_an_unknown_cache_is_a_403(fake_gemini, owner, stranger, method):
    cache = create(fake_gemini, owner)
    for key, name in ((stranger, cache["name"]), (owner, "cachedContents/nosuchcache")):
        response = call(method, caches_url(fake_gemini, name), key, {"ttl": "60s"} if method == "PATCH" else None)
        assert (response.status_code, response.json()) == (403, CACHE_403)
    assert fake_gemini.cached_contents_of(owner) == [cache]
    assert (fake_gemini.last_request.endpoint, fake_gemini.last_request.resource) == (
        f"cachedContents.{method.lower()}", "cachedContents/nosuchcache")


def test_get_and_delete_by_the_owner(fake_gemini, owner):
    cache = create(fake_gemini, owner)
    assert call("GET", caches_url(fake_gemini, cache["name"]), owner).json() == cache
    gone = call("DELETE", caches_url(fake_gemini, cache["name"]), owner)
    assert (gone.status_code, gone.json()) == (200, {})
    assert call("GET", caches_url(fake_gemini, cache["name"]), owner).json() == CACHE_403


@pytest.mark.parametrize(("mask", "body", "lifetime"), [
    ("ttl", {"ttl": "600s"}, timedelta(seconds=600)),
    (None, {"ttl": "7200.5s"}, timedelta(seconds=7200.5)),
    ("expireTime", {"expireTime": "EXPIRE"}, timedelta(days=1)),
    ("expire_time", {"expire_time": "EXPIRE"}, timedelta(days=1)),
])
def test_patch_updates_the_lifetime(fake_gemini, owner, mask, body, lifetime):
    cache = create(fake_gemini, owner)
    target = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    body = {k: target if v == "EXPIRE" else v for k, v in body.items()}
    params = {"updateMask": mask} if mask else {}
    response = call("PATCH", caches_url(fake_gemini, cache["name"]), owner, body, **params)
    assert response.status_code == 200, response.text
    patched = response.json()
    assert moment(patched["expireTime"]) - moment(patched["updateTime"]) == pytest.approx(lifetime,
                                                                                          abs=timedelta(seconds=1))
    assert patched["createTime"] == cache["createTime"] and patched["updateTime"] > cache["updateTime"]
    assert fake_gemini.cached_contents_of(owner) == [patched]


@pytest.mark.parametrize(("mask", "body"), [
    ("displayName", {"displayName": "renamed"}),
    ("ttl,contents", {"ttl": "60s", "contents": []}),
    (None, {"model": "models/gemini-2.5-pro"}),
    (None, {}),
    ("ttl,expireTime", {"ttl": "60s", "expireTime": "2099-01-01T00:00:00Z"}),
    ("ttl", {"expireTime": "2099-01-01T00:00:00Z"}),
])
def test_patch_refuses_anything_but_one_lifetime(fake_gemini, owner, mask, body):
    cache = create(fake_gemini, owner)
    params = {"updateMask": mask} if mask else {}
    response = call("PATCH", caches_url(fake_gemini, cache["name"]), owner, body, **params)
    assert response.status_code == 400 and response.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert fake_gemini.cached_contents_of(owner) == [cache]


def test_an_expired_cache_no_longer_exists(fake_gemini, owner):
    past = (datetime.now(UTC) - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    name = fake_gemini.add_cached_content(owner, model=MODEL, expireTime=past)
    assert call("GET", caches_url(fake_gemini, name), owner).status_code == 403
    body = {"contents": [{"parts": [{"text": "hi"}]}], "cachedContent": name}
    generate = call("POST", f"{fake_gemini.base_url}/v1beta/models/{MODEL}:generateContent", owner, body)
    assert (generate.status_code, generate.json()) == (403, CACHE_403)


def test_ttl_parsing():
    assert parse_ttl("300s") == timedelta(seconds=300)
    assert parse_ttl("1.25s") == timedelta(seconds=1.25)
    for bad in ("300", "-1s", "1.s", "0s", 300, None):
        with pytest.raises(ApiError):
            parse_ttl(bad)


# the official SDK

def test_sdk_create_get_list_update_delete(fake_gemini, owner, stranger, api_version):
    client, other = genai_client(fake_gemini, owner, api_version), genai_client(fake_gemini, stranger, api_version)
    file = client.files.upload(file=io.BytesIO(b"the whole handbook"), config={"mime_type": "text/plain"})
    config = types.CreateCachedContentConfig(
        contents=[types.Content(role="user", parts=[types.Part.from_uri(file_uri=file.uri, mime_type=file.mime_type),
                                                    types.Part(text="summarise the handbook")])],
        system_instruction="be brief", ttl="300s", display_name="handbook")
    cache = client.caches.create(model=MODEL, config=config)
    assert cache.model == f"models/{MODEL}" and cache.display_name == "handbook"
    assert cache.usage_metadata.total_token_count == 258 + 3 + 2
    assert fake_gemini.last_request.path == f"/{api_version or 'v1'}/cachedContents"
    assert client.caches.get(name=cache.name).expire_time == cache.expire_time
    more = [client.caches.create(model=MODEL, config={"ttl": "60s"}).name for _ in range(2)]
    assert [c.name for c in client.caches.list(config={"page_size": 2})] == [cache.name, *more]
    updated = client.caches.update(name=cache.name, config=types.UpdateCachedContentConfig(ttl="3600s"))
    assert updated.expire_time - updated.update_time == pytest.approx(timedelta(hours=1), abs=timedelta(seconds=1))
    assert fake_gemini.last_request.json == {"ttl": "3600s"}
    assert list(other.caches.list()) == []
    for attempt in (lambda: other.caches.get(name=cache.name), lambda: other.caches.delete(name=cache.name),
                    lambda: other.caches.update(name=cache.name, config={"ttl": "1s"})):
        with pytest.raises(errors.ClientError) as caught:
            attempt()
        assert (caught.value.code, caught.value.message) == (403, CACHE_403["error"]["message"])
    client.caches.delete(name=cache.name)
    assert [c["name"] for c in fake_gemini.cached_contents_of(owner)] == more


def test_sdk_generates_with_a_cache_only_for_its_owner(fake_gemini, owner, stranger, api_version):
    client, other = genai_client(fake_gemini, owner, api_version), genai_client(fake_gemini, stranger, api_version)
    cache = client.caches.create(model=MODEL, config={"contents": ["a long shared context"], "ttl": "300s"})
    config = types.GenerateContentConfig(cached_content=cache.name)
    answer = client.models.generate_content(model=MODEL, contents="and a question", config=config)
    assert answer.text == "Echo: and a question"
    assert fake_gemini.last_request.json["cachedContent"] == cache.name
    with pytest.raises(errors.ClientError) as caught:
        other.models.generate_content(model=MODEL, contents="and a question", config=config)
    assert (caught.value.code, caught.value.status) == (403, "PERMISSION_DENIED")
