"""Classes 4-6 -- errors the client causes upstream: passed through once, in its dialect, blaming no key.

A request naming a file or cached content the Vault did not make for the caller is a 404 at
the door (Google would answer 403 from every key); a redirect is no answer at all. Neither may
fail over, disable, cool or strike a key.
Where Google does name the key (API_KEY_INVALID), one request may disable at most one key.
The official SDKs must see these errors as their own exception types, with Google's message.
"""

import io

import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from tests.e2e.hostile.probe import (
    MODEL,
    assert_dialect,
    assert_no_secret_in,
    auth_for,
    disabled_ids,
    only_call,
    pool_health,
    send,
)
from tests.fake_gemini import Redirect, faults

UPSTREAM = "https://generativelanguage.googleapis.com"
REPEATS = 3


@pytest.fixture
def foreign(pooled) -> dict[str, str]:
    """Resources of a project outside the pool, and names nobody owns."""
    outsider = pooled.fake.new_key()
    file = pooled.fake.add_file(outsider)
    return {"file": file, "file-uri": f"{UPSTREAM}/v1beta/{file}", "made-up-file": "files/doesnotexist123",
            "cache": pooled.fake.add_cached_content(outsider), "made-up-cache": "cachedContents/nope123"}


def file_part(uri: str) -> dict:
    return {"fileData": {"fileUri": uri, "mimeType": "text/plain"}}


def native_with_file(uri: str) -> dict:
    return {"contents": [{"role": "user", "parts": [{"text": "Summarise"}, file_part(uri)]}]}


def native_with_cache(name: str) -> dict:
    return {"contents": [{"role": "user", "parts": [{"text": "Summarise"}]}], "cachedContent": name}


def chat_with_cache(name: str, stream: bool = False) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": "Summarise"}], "stream": stream,
            "extra_body": {"google": {"cached_content": name}}}


def chat_with_file(uri: str) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "Describe"}, {"type": "image_url", "image_url": {"url": uri}}]}]}


GENERATE = f"/v1beta/models/{MODEL}:generateContent"
HI = {"contents": [{"parts": [{"text": "hi"}]}]}
# id -> (client target, upstream path, upstream query, dialect, body builder, resource)
CASES = {
    "generate-file": (GENERATE, GENERATE, {}, "google", native_with_file, "file"),
    "generate-file-uri": (GENERATE, GENERATE, {}, "google", native_with_file, "file-uri"),
    "generate-made-up-file": (GENERATE, GENERATE, {}, "google", native_with_file, "made-up-file"),
    "generate-cache": (f"/v1/models/{MODEL}:generateContent", f"/v1/models/{MODEL}:generateContent", {}, "google",
                       native_with_cache, "cache"),
    "generate-made-up-cache": (GENERATE, GENERATE, {}, "google", native_with_cache, "made-up-cache"),
    "stream-sse-file": (f"/v1/models/{MODEL}:streamGenerateContent?alt=sse",
                        f"/v1/models/{MODEL}:streamGenerateContent", {"alt": ["sse"]}, "google", native_with_file,
                        "file"),
    "stream-array-cache": (f"/v1beta/models/{MODEL}:streamGenerateContent",
                           f"/v1beta/models/{MODEL}:streamGenerateContent", {}, "google", native_with_cache, "cache"),
    "count-file": (f"/v1beta/models/{MODEL}:countTokens", f"/v1beta/models/{MODEL}:countTokens", {}, "google",
                   native_with_file, "file"),
    "count-request-cache": (f"/v1/models/{MODEL}:countTokens", f"/v1/models/{MODEL}:countTokens", {}, "google",
                            lambda name: {"generateContentRequest": {"model": f"models/{MODEL}"}
                                          | native_with_cache(name)}, "cache"),
    "chat-cache": ("/v1/chat/completions", "/v1beta/openai/chat/completions", {}, "openai", chat_with_cache, "cache"),
    "chat-stream-cache": ("/v1beta/openai/chat/completions", "/v1beta/openai/chat/completions", {}, "openai",
                          lambda name: chat_with_cache(name, stream=True), "made-up-cache"),
    "chat-image-file": ("/v1/chat/completions", "/v1beta/openai/chat/completions", {}, "openai", chat_with_file,
                        "file-uri"),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_a_foreign_file_or_cache_is_a_404_in_dialect_never_sent_and_blames_no_key(pooled, foreign, case):
    """Resources the Vault did not make for this caller do not exist for it: nothing reaches Google."""
    target, _upstream_path, _query, dialect, build, resource = case
    before = pool_health(pooled)
    for _ in range(REPEATS):
        pooled.fake.reset()
        answer = send(pooled, "POST", target, auth_for(pooled, dialect), build(foreign[resource]))
        error = assert_dialect(answer, 404, dialect)
        assert "not found" in error["message"].lower(), error
        if dialect == "openai":
            assert error["code"] == "not_found"
        else:
            assert error["status"] == "NOT_FOUND"
        assert pooled.fake.calls == []
        assert_no_secret_in(pooled, answer.text())
    assert pool_health(pooled) == before
    assert disabled_ids(pooled) == set()


def test_a_file_uploaded_through_the_vault_is_always_served_by_the_key_holding_it(pooled):
    client = genai.Client(api_key=pooled.vault_key, http_options=types.HttpOptions(base_url=pooled.base_url))
    uploaded = client.files.upload(file=io.BytesIO(b"hello"), config={"mime_type": "text/plain"})
    owner = next(call.key for call in pooled.fake.calls if call.path.startswith("/upload/") and call.key)
    before = pool_health(pooled)
    for _ in range(2 * len(pooled.upstream_keys) + 1):
        pooled.fake.reset()
        answer = send(pooled, "POST", GENERATE, auth_for(pooled, "google"), native_with_file(uploaded.uri))
        assert answer.status == 200 and only_call(pooled).key == owner
    assert pool_health(pooled) == before


@pytest.mark.parametrize("status", [400, 403, 404])
@pytest.mark.parametrize("dialect", ["google", "openai"])
def test_an_upstream_client_error_that_names_the_key_does_not_hand_it_out(pooled, status, dialect):
    """Google's message and details are relayed on a client error; a pool key inside them must not be."""
    google_status = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND"}[status]
    for key in pooled.upstream_keys:
        message = f"Request contains an invalid argument for consumer 'api_key:{key}' (project of {key[-8:]})."
        pooled.fake.enqueue(faults.error(status, google_status, message, [
            faults.localized(message), faults.bad_request(f"key {key} cannot be used for this field"),
            faults.help_link(f"Details for {key}", f"https://console.example/keys/{key}")]), key=key)
    before = pool_health(pooled)
    path = "/v1/chat/completions" if dialect == "openai" else GENERATE
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]} if dialect == "openai" else HI
    answer = send(pooled, "POST", path, auth_for(pooled, dialect), body)
    assert_dialect(answer, status, dialect)
    assert len(pooled.fake.calls) == 1
    assert_no_secret_in(pooled, answer.text())
    assert pool_health(pooled) == before


SMUGGLES = [
    ("query $key", "?$key=AIzaBadKey0000000000000000000000000000", []),
    ("query access_token", "?access_token=ya29.smuggled", []),
    ("query second key", "?key=AIzaBadKey0000000000000000000000000000", []),
    ("bearer on native", "", [("Authorization", "Bearer AIzaBadKey0000000000000000000000000000")]),
    ("second x-goog-api-key", "", [("x-goog-api-key", "AIzaBadKey0000000000000000000000000000")]),
    ("x-goog-api-key in lower and upper", "", [("X-GOOG-API-KEY", "AIzaBadKey0000000000000000000000000000")]),
    ("basic authorization", "", [("Authorization", "Basic QUl6YUJhZDo=")]),
]


def test_no_smuggled_credential_can_draw_api_key_invalid(pooled):
    before = pool_health(pooled)
    for _name, query, extra in SMUGGLES:
        for path, dialect in ((GENERATE, "google"), ("/v1/chat/completions", "openai")):
            pooled.fake.reset()
            body = ({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]} if dialect == "openai"
                    else {"contents": [{"parts": [{"text": "hi"}]}]})
            answer = send(pooled, "POST", path + query, auth_for(pooled, dialect) + extra, body)
            for record in pooled.fake.calls:
                assert len(record.credentials) == 1 and record.credentials[0][1] in pooled.upstream_keys
                assert record.status != 400, "the upstream saw an invalid credential"
            if not pooled.fake.calls:
                assert_dialect(answer, (400, 401), dialect)
            else:
                assert answer.status == 200
    assert pool_health(pooled) == before


@pytest.mark.parametrize(("fault", "times"), [
    (lambda key: faults.key_invalid(), 1), (lambda key: faults.key_invalid(), None),
    (lambda key: faults.consumer_suspended(key=key), None),
], ids=["key-invalid-once-per-key", "key-invalid-always", "consumer-suspended-naming-the-key"])
def test_one_request_disables_at_most_one_key(own_stack, fault, times):
    stack = own_stack(key_count=4, WEB_CONCURRENCY="1")
    for key in stack.upstream_keys:
        stack.fake.enqueue(fault(key), key=key, times=times)
    attempts = [(GENERATE, "google", {"contents": [{"parts": [{"text": "hi"}]}]}),
                ("/v1/chat/completions", "openai", {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}),
                (f"/v1/models/{MODEL}:streamGenerateContent?alt=sse", "google",
                 {"contents": [{"parts": [{"text": "hi"}]}]})]
    for path, dialect, body in attempts:
        disabled_before = disabled_ids(stack)
        stack.fake.reset()
        answer = send(stack, "POST", path, auth_for(stack, dialect), body)
        newly_disabled = disabled_ids(stack) - disabled_before
        assert len(newly_disabled) <= 1, f"one request disabled {len(newly_disabled)} keys"
        assert len(stack.fake.calls) <= 2, "after a second key rejected the same request it must stop"
        if answer.status != 200:
            assert_dialect(answer, (502, 503), dialect)
        assert_no_secret_in(stack, answer.text())
    assert_no_secret_in(stack, stack.server.log())


REDIRECT_TARGETS = [
    ("POST", GENERATE, "google", HI),
    ("POST", f"/v1/models/{MODEL}:streamGenerateContent?alt=sse", "google", HI),
    ("GET", "/v1beta/models", "google", None),
    ("POST", "/v1/chat/completions", "openai", {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}),
    ("GET", "/v1beta/openai/models", "openai", None),
]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("target", REDIRECT_TARGETS, ids=lambda target: f"{target[0]} {target[1]}")
def test_an_upstream_redirect_is_a_502_in_dialect_never_followed_nor_relayed(pooled, target, status):
    method, path, dialect, body = target
    location = f"{pooled.fake.base_url}/v1beta/files?key={pooled.upstream_keys[1]}&next=https://evil.example/steal"
    pooled.fake.enqueue(Redirect(status=status, location=location))
    before = pool_health(pooled)
    answer = send(pooled, method, path, auth_for(pooled, dialect, body is not None), body)
    assert_dialect(answer, 502, dialect)
    assert answer.header("Location") is None
    assert "evil.example" not in answer.text() and "/v1beta/files" not in answer.text()
    record = only_call(pooled)  # neither followed nor retried on another key
    assert record.outcome == "redirect" or record.status == status
    assert pool_health(pooled) == before
    assert_no_secret_in(pooled, answer.text())


# --- the official SDKs see the upstream's errors as their own ------------------------------------

@pytest.fixture(params=["/v1", "/v1beta/openai"])
def openai_client(request, pooled):
    return openai.OpenAI(api_key=pooled.vault_key, base_url=pooled.base_url + request.param, max_retries=0)


def test_openai_sdk_raises_bad_request_with_googles_message(pooled, openai_client):
    message = "Frobnication level 11 is out of range for this model."
    pooled.fake.enqueue(faults.invalid_argument(message))
    before = pool_health(pooled)
    with pytest.raises(openai.BadRequestError) as raised:
        openai_client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert message in str(raised.value) and raised.value.status_code == 400
    assert raised.value.body["type"] == "invalid_request_error" and raised.value.body["message"] == message
    assert len(pooled.fake.calls) == 1

    pooled.fake.reset()
    with pytest.raises(openai.BadRequestError) as refused:  # a request the upstream itself refuses
        openai_client.chat.completions.create(model=MODEL, messages=[])
    assert "contents is not specified" in str(refused.value)
    with pytest.raises(openai.BadRequestError) as embedded:
        openai_client.embeddings.create(model="gemini-embedding-001", input=[])
    assert "input is not specified" in str(embedded.value)
    assert len(pooled.fake.calls) == 2
    assert pool_health(pooled) == before
    assert_no_secret_in(pooled, str(raised.value), str(refused.value), str(embedded.value))


@pytest.mark.parametrize("stream", [False, True])
def test_openai_sdk_raises_not_found_for_a_foreign_cache(pooled, openai_client, foreign, stream):
    before = pool_health(pooled)
    for _ in range(REPEATS):
        pooled.fake.reset()
        with pytest.raises(openai.NotFoundError) as raised:
            openai_client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=stream,
                extra_body={"extra_body": {"google": {"cached_content": foreign["cache"]}}})
        assert "CachedContent" in str(raised.value) and raised.value.status_code == 404
        assert pooled.fake.calls == []
        assert_no_secret_in(pooled, str(raised.value))
    assert pool_health(pooled) == before


@pytest.mark.parametrize("version", ["v1beta", "v1"])
def test_genai_sdk_raises_a_404_client_error_for_foreign_resources(pooled, foreign, version):
    client = genai.Client(api_key=pooled.vault_key,
                          http_options=types.HttpOptions(base_url=pooled.base_url, api_version=version))
    before = pool_health(pooled)
    calls = [
        lambda: client.models.generate_content(model=MODEL, contents="hi",
                                               config=types.GenerateContentConfig(cached_content=foreign["cache"])),
        lambda: client.models.generate_content(model=MODEL, contents=[types.Part.from_uri(
            file_uri=foreign["file-uri"], mime_type="text/plain"), "Summarise"]),
        lambda: client.models.count_tokens(model=MODEL, contents=[types.Part.from_uri(
            file_uri=foreign["file"], mime_type="text/plain")]),
        lambda: client.files.get(name=foreign["file"]),
        lambda: client.files.delete(name=foreign["file"]),
        lambda: client.caches.get(name=foreign["cache"]),
        lambda: client.caches.delete(name=foreign["cache"]),
    ]
    for call in calls:
        pooled.fake.reset()
        with pytest.raises(genai_errors.ClientError) as raised:
            call()
        assert raised.value.code == 404 and raised.value.status == "NOT_FOUND"
        assert pooled.fake.calls == []
        assert_no_secret_in(pooled, str(raised.value))
    assert pool_health(pooled) == before
