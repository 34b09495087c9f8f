"""Files and caches against the shared pool and the books: nothing one tenant does with them cools
another's generation, and no cache is kept for more than its owner's balance can pay."""

import io

import requests
from google import genai
from google.genai import errors, types

from tests.e2e.hostile.probe import pool_health
from tests.fake_gemini import faults

MODEL = "gemini-2.5-flash"
GENERATE = f"/v1beta/models/{MODEL}:generateContent"


def me(stack) -> dict:
    return requests.get(f"{stack.base_url}/auth/users/me", headers={"Authorization": f"Bearer {stack.user_token}"},
                        timeout=30).json()


def set_balance(stack, usd: str) -> None:
    answer = requests.patch(f"{stack.base_url}/admin/api/users/{me(stack)['id']}", headers=stack.admin(),
                            json={"balance": usd, "reason": "test"}, timeout=30)
    assert answer.status_code == 200, answer.text


def generate(stack) -> requests.Response:
    return requests.post(f"{stack.base_url}{GENERATE}", json={"contents": [{"parts": [{"text": "hi"}]}]},
                         headers={"x-goog-api-key": stack.vault_key}, timeout=30)


def test_a_cache_the_balance_cannot_keep_is_402_and_never_made(own_stack):
    stack = own_stack(key_count=2, VAULT_SETTLE_DELAY_MS="0")
    set_balance(stack, "0.01")
    client = genai.Client(api_key=stack.vault_key, http_options=types.HttpOptions(base_url=stack.base_url))
    long_text = "word " * 20_000  # ~50 KB: its worst case for 300 years is far past one cent
    with_ttl = types.CreateCachedContentConfig(contents=[long_text], ttl="9999999999s")
    try:
        client.caches.create(model=MODEL, config=with_ttl)
        raise AssertionError("a cache the balance cannot keep was made")
    except errors.ClientError as refused:
        assert refused.code == 402
    assert not [call for call in stack.fake.calls if call.endpoint == "cachedContents.create"]
    assert me(stack)["balance_nano_usd"] == 10_000_000
    cache = client.caches.create(model=MODEL, config=types.CreateCachedContentConfig(contents=["short"], ttl="60s"))
    paid = me(stack)["balance_nano_usd"]
    assert 0 < 10_000_000 - paid < 10_000
    try:
        client.caches.update(name=cache.name, config=types.UpdateCachedContentConfig(ttl="9999999999s"))
        raise AssertionError("an extension the balance cannot pay was made")
    except errors.ClientError as refused:
        assert refused.code == 402
    assert not [call for call in stack.fake.calls if call.endpoint == "cachedContents.patch"]
    assert me(stack)["balance_nano_usd"] == paid


def test_429s_on_resource_calls_never_cool_generation(own_stack):
    stack = own_stack(key_count=2, VAULT_SETTLE_DELAY_MS="0")
    stack.fake.enqueue(faults.quota_exceeded("300s"), endpoint="cachedContents.create", times=None)
    stack.fake.enqueue(faults.quota_exceeded("300s"), endpoint="files.upload.start", times=None)
    client = genai.Client(api_key=stack.vault_key, http_options=types.HttpOptions(base_url=stack.base_url))
    for attempt in (lambda: client.caches.create(model=MODEL, config=types.CreateCachedContentConfig(
                        contents=["x"])),
                    lambda: client.files.upload(file=io.BytesIO(b"abc"), config={"mime_type": "text/plain"})):
        try:
            attempt()
            raise AssertionError("the upstream's 429 was not passed on")
        except errors.APIError as refused:
            assert refused.code == 429
    assert generate(stack).status_code == 200  # generation is not cooled on any key
    cooled = {cooldown["model"] for key in stack.pool() for cooldown in key["cooldowns"]}
    assert cooled <= {"cachedContents", "files.upload"} and MODEL not in cooled


def test_a_file_read_denied_for_another_reason_keeps_its_record(own_stack):
    stack = own_stack(key_count=1, VAULT_SETTLE_DELAY_MS="0")
    client = genai.Client(api_key=stack.vault_key, http_options=types.HttpOptions(base_url=stack.base_url))
    uploaded = client.files.upload(file=io.BytesIO(b"abc"), config={"mime_type": "text/plain"})
    stack.fake.enqueue(faults.error(403, "PERMISSION_DENIED", "The caller does not have permission"),
                       endpoint="files.get")
    before = pool_health(stack)
    try:
        client.files.get(name=uploaded.name)
        raise AssertionError("the 403 was not passed on")
    except errors.ClientError as refused:
        assert refused.code == 403
    assert client.files.get(name=uploaded.name).name == uploaded.name  # still the caller's
    assert pool_health(stack) == before


def test_upload_requests_count_against_the_keys_rate_limit_and_stop_with_its_key(own_stack):
    stack = own_stack(key_count=1, VAULT_SETTLE_DELAY_MS="0")
    [mine] = requests.get(f"{stack.base_url}/api-keys/", timeout=30,
                          headers={"Authorization": f"Bearer {stack.user_token}"}).json()
    limit = f"{stack.base_url}/admin/api/api-keys/{mine['id']}"
    assert requests.patch(limit, json={"rate_limit_rpm": 3}, headers=stack.admin(), timeout=30).status_code == 200
    start = requests.post(f"{stack.base_url}/upload/v1beta/files", json={"file": {"mimeType": "text/plain"}},
                          timeout=30, headers={"x-goog-api-key": stack.vault_key, "X-Goog-Upload-Protocol": "resumable",
                                               "X-Goog-Upload-Command": "start",
                                               "X-Goog-Upload-Header-Content-Length": "3"})
    assert start.status_code == 200
    url = start.headers["X-Goog-Upload-URL"]
    answers = [requests.post(url, headers={"X-Goog-Upload-Command": "query"}, timeout=30) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 429]  # the start was the first of three
    assert answers[-1].headers["X-Goog-Upload-Status"] == "final" and "Retry-After" in answers[-1].headers
    assert requests.patch(limit, json={"rate_limit_rpm": 0}, headers=stack.admin(), timeout=30).status_code == 200
    [key] = stack.pool()
    requests.patch(f"{stack.base_url}/admin/api/upstream-keys/{key['id']}", json={"state": "disabled"},
                   headers=stack.admin(), timeout=30)
    calls = len(stack.fake.calls)
    refused = requests.post(url, headers={"X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0"},
                            data=b"abc", timeout=30)
    assert refused.status_code == 409 and refused.json()["error"]["status"] == "FAILED_PRECONDITION"
    assert refused.headers["X-Goog-Upload-Status"] == "final" and len(stack.fake.calls) == calls


def multipart_body(metadata: bytes, data: bytes) -> bytes:
    return (b"--bnd\r\nContent-Type: application/json\r\n\r\n" + metadata + b"\r\n--bnd\r\nContent-Type: text/plain"
            b"\r\n\r\n" + data + b"\r\n--bnd--\r\n")


def test_a_multipart_upload_cannot_name_its_file_or_set_fields_the_vault_does_not_know(stack):
    url = f"{stack.base_url}/upload/v1beta/files?uploadType=multipart"
    headers = {"x-goog-api-key": stack.vault_key, "Content-Type": "multipart/related; boundary=bnd"}
    named = requests.post(url, headers=headers, timeout=30, data=multipart_body(
        b'{"file": {"name": "files/chosen1", "displayName": "mine", "sizeBytes": "1"}}', b"hello"))
    assert named.status_code == 200 and named.json()["file"]["name"] != "files/chosen1"
    assert named.json()["file"]["displayName"] == "mine" and named.json()["file"]["sizeBytes"] == "5"
    [sent] = [call for call in stack.fake.calls if call.endpoint == "files.upload.multipart"]
    assert b"chosen1" not in sent.raw_body and b"hello" in sent.raw_body
    calls = len(stack.fake.calls)
    for metadata in (b'{"file": {"uri": "https://elsewhere"}}', b'{"other": 1}', b"not json", b'["file"]'):
        refused = requests.post(url, headers=headers, data=multipart_body(metadata, b"x"), timeout=30)
        assert refused.status_code == 400 and refused.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert len(stack.fake.calls) == calls


def test_storage_is_charged_at_vault_cache_storage_price(own_stack):
    stack = own_stack(key_count=1, VAULT_SETTLE_DELAY_MS="0", VAULT_CACHE_STORAGE_PRICE="3.00")
    client = genai.Client(api_key=stack.vault_key, http_options=types.HttpOptions(base_url=stack.base_url))
    before = me(stack)["balance_nano_usd"]
    cache = client.caches.create(model=MODEL, config=types.CreateCachedContentConfig(
        contents=["a few words to keep"], ttl="3600s"))
    tokens = cache.usage_metadata.total_token_count
    assert tokens > 0 and before - me(stack)["balance_nano_usd"] == tokens * 3000  # 1 h at $3 per 1M tokens
