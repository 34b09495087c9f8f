"""Files and cached contents with the official google-genai SDK, through a real gunicorn Vault.

Each user sees and uses only their own: another user's attempts all get 404 and the fake
upstream shows no call for them; every call about a resource went out with the key that made it.
"""

import io

import pytest
import requests
from google import genai
from google.genai import errors, types

FILE_BYTES = b"The quick brown fox jumps over the lazy dog.\n" * 40


def second_key(stack, email: str = "grace@example.com") -> str:
    """A Vault key of another user of the same Vault."""
    account = {"email": email, "password": "long enough"}
    requests.post(f"{stack.base_url}/auth/users/", json=account, timeout=30)
    token = requests.post(f"{stack.base_url}/auth/token", json=account, timeout=30).json()["access_token"]
    return requests.post(f"{stack.base_url}/api-keys/", json={"name": "other"}, timeout=30,
                         headers={"Authorization": f"Bearer {token}"}).json()["key"]


def client_for(stack, key: str, version: str | None) -> genai.Client:
    options = {"base_url": stack.base_url} | ({"api_version": version} if version else {})
    return genai.Client(api_key=key, http_options=types.HttpOptions(**options))


def upload(client: genai.Client, data: bytes = FILE_BYTES, name: str = "notes") -> types.File:
    return client.files.upload(file=io.BytesIO(data), config={"mime_type": "text/plain", "display_name": name})


def keys_used(stack, name: str) -> set:
    """The upstream keys of every fake call that named `name` (in its path or body)."""
    return {call.key for call in stack.fake.calls
            if name in call.path or name.encode() in (call.raw_body or b"")}


@pytest.mark.parametrize("version", ["v1beta", None])
def test_upload_generate_list_get_delete_with_the_sdk(stack, version):
    client = client_for(stack, stack.vault_key, version)
    uploaded = upload(client)
    assert uploaded.name.startswith("files/") and uploaded.size_bytes == len(FILE_BYTES)
    assert uploaded.display_name == "notes" and uploaded.mime_type == "text/plain"
    prefix = "/upload/v1beta/files" if version else "/upload/v1/files"
    start, *chunks = [call for call in stack.fake.calls if call.path.startswith("/upload/")]
    assert start.path == prefix and start.key in stack.upstream_keys
    assert chunks and all(chunk.key is None for chunk in chunks)  # the upload URL is the credential upstream too
    part = types.Part.from_uri(file_uri=uploaded.uri, mime_type="text/plain")
    answer = client.models.generate_content(model="gemini-2.5-flash", contents=["Summarise", part])
    assert answer.text
    streamed = "".join(chunk.text or "" for chunk in client.models.generate_content_stream(
        model="gemini-2.5-flash", contents=["Summarise", part]))
    assert streamed
    listed = [f.name for f in client.files.list()]
    assert uploaded.name in listed
    assert client.files.get(name=uploaded.name).size_bytes == len(FILE_BYTES)
    assert keys_used(stack, uploaded.name.removeprefix("files/")) == {start.key}
    client.files.delete(name=uploaded.name)
    with pytest.raises(errors.ClientError) as gone:
        client.files.get(name=uploaded.name)
    assert gone.value.code == 404
    assert uploaded.name not in [f.name for f in client.files.list()]


def test_another_user_gets_404_for_everything_and_nothing_reaches_upstream(stack):
    owner = client_for(stack, stack.vault_key, "v1beta")
    uploaded = upload(owner)
    stranger = client_for(stack, second_key(stack), "v1beta")
    calls_before = len(stack.fake.calls)
    assert list(stranger.files.list()) == []
    attempts = [
        lambda: stranger.files.get(name=uploaded.name),
        lambda: stranger.files.delete(name=uploaded.name),
        lambda: stranger.models.generate_content(model="gemini-2.5-flash", contents=[
            "x", types.Part.from_uri(file_uri=uploaded.uri, mime_type="text/plain")]),
        lambda: stranger.models.generate_content(model="gemini-2.5-flash", contents=[
            "x", types.Part.from_uri(file_uri=uploaded.name, mime_type="text/plain")]),
        lambda: stranger.models.count_tokens(model="gemini-2.5-flash", contents=[
            "x", types.Part.from_uri(file_uri=uploaded.uri, mime_type="text/plain")]),
        lambda: stranger.caches.create(model="gemini-2.5-flash", config=types.CreateCachedContentConfig(
            contents=[types.Content(role="user", parts=[types.Part.from_uri(file_uri=uploaded.uri,
                                                                            mime_type="text/plain")])])),
    ]
    for attempt in attempts:
        with pytest.raises(errors.ClientError) as refused:
            attempt()
        assert refused.value.code == 404
    assert len(stack.fake.calls) == calls_before, "no attempt left the Vault"
    assert owner.files.get(name=uploaded.name).name == uploaded.name  # the owner's file is untouched


def test_caches_are_owned_pinned_and_their_storage_is_charged(stack):
    client = client_for(stack, stack.vault_key, "v1beta")
    uploaded = upload(client)
    before = me(stack)
    cache = client.caches.create(model="gemini-2.5-flash", config=types.CreateCachedContentConfig(
        contents=[types.Content(role="user", parts=[types.Part.from_uri(file_uri=uploaded.uri,
                                                                        mime_type="text/plain")])],
        system_instruction="Answer briefly.", ttl="7200s", display_name="notes cache"))
    assert cache.name.startswith("cachedContents/") and cache.usage_metadata.total_token_count > 0
    tokens = cache.usage_metadata.total_token_count
    charged = before["balance_nano_usd"] - me(stack)["balance_nano_usd"]
    assert charged == tokens * 2000  # 2 h at $1.00 per 1M tokens per hour: 2,000 nano-USD per token
    assert [c.name for c in client.caches.list()] == [cache.name]
    assert client.caches.get(name=cache.name).display_name == "notes cache"
    answer = client.models.generate_content(model="gemini-2.5-flash", contents="What does it say?",
                                            config=types.GenerateContentConfig(cached_content=cache.name))
    assert answer.text
    extended_from = me(stack)["balance_nano_usd"]
    client.caches.update(name=cache.name, config=types.UpdateCachedContentConfig(ttl="10800s"))
    extra = extended_from - me(stack)["balance_nano_usd"]
    # the new expiry is 3 h from the update: the hour added plus the time since creation, never less
    assert tokens * 1000 <= extra <= tokens * 1000 * 61 // 60
    stranger = client_for(stack, second_key(stack, "lin@example.com"), "v1beta")
    for attempt in (lambda: stranger.caches.get(name=cache.name), lambda: stranger.caches.delete(name=cache.name),
                    lambda: stranger.models.generate_content(
                        model="gemini-2.5-flash", contents="x",
                        config=types.GenerateContentConfig(cached_content=cache.name))):
        with pytest.raises(errors.ClientError) as refused:
            attempt()
        assert refused.value.code == 404
    assert list(stranger.caches.list()) == []
    assert keys_used(stack, cache.name.removeprefix("cachedContents/")) == keys_used(
        stack, uploaded.name.removeprefix("files/")) and len(keys_used(stack, cache.name)) == 1
    client.caches.delete(name=cache.name)
    assert list(client.caches.list()) == []


def me(stack) -> dict:
    """The user as they see themselves, once every call of theirs is settled: a call's hold is
    given back when its response closes, which may be just after the client read the answer."""
    found = requests.get(f"{stack.base_url}/auth/users/me", timeout=30,
                         headers={"Authorization": f"Bearer {stack.user_token}"}).json()
    for _ in range(400):
        shown = requests.get(f"{stack.base_url}/admin/api/users/{found['id']}", headers=stack.admin(), timeout=30)
        if shown.json()["ledger"]["open_holds"] == 0:
            return requests.get(f"{stack.base_url}/auth/users/me", timeout=30,
                                headers={"Authorization": f"Bearer {stack.user_token}"}).json()
    raise AssertionError("the user's calls never settled")


def multipart(stack, data: bytes, name: str, key: str | None = None) -> requests.Response:
    """A whole upload in one `multipart/related` body, raw."""
    boundary = "vault-test-boundary"
    body = (f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
            f'{{"file": {{"displayName": "{name}", "mimeType": "text/plain"}}}}\r\n'
            f"--{boundary}\r\nContent-Type: text/plain\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return requests.post(f"{stack.base_url}/upload/v1beta/files?uploadType=multipart", data=body, timeout=30,
                         headers={"x-goog-api-key": key or stack.vault_key,
                                  "Content-Type": f"multipart/related; boundary={boundary}"})


def test_multipart_uploads_and_paged_lists_of_ones_own_files(stack):
    mine, names = second_key(stack, "pages@example.com"), []
    for index in range(3):
        answer = multipart(stack, b"part %d" % index, f"doc{index}", mine)
        assert answer.status_code == 200, answer.text
        names.append(answer.json()["file"]["name"])
    assert multipart(stack, b"theirs", "theirs", second_key(stack, "mo@example.com")).status_code == 200
    headers = {"x-goog-api-key": mine}
    first = requests.get(f"{stack.base_url}/v1beta/files?pageSize=2", headers=headers, timeout=30).json()
    assert [f["name"] for f in first["files"]] == names[:2] and first["nextPageToken"]
    rest = requests.get(f"{stack.base_url}/v1beta/files", params={"pageSize": 2, "pageToken": first["nextPageToken"]},
                        headers=headers, timeout=30).json()
    assert [f["name"] for f in rest["files"]] == names[2:] and "nextPageToken" not in rest
    bad = requests.get(f"{stack.base_url}/v1beta/files", params={"pageToken": "bm90LW91cnM"}, headers=headers,
                       timeout=30)
    assert bad.status_code == 400 and bad.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert all(call.endpoint != "files.list" for call in stack.fake.calls)
