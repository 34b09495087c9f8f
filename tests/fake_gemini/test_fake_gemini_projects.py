"""Keys as Google projects: resources owned per key, every credential checked, key-fault bodies."""

import json

import openai
import pytest
import requests
from google import genai
from google.genai import errors, types

from tests.fake_gemini import faults
from tests.fake_gemini.resources import file_name, references
from tests.fake_gemini.server import FakeGemini

MODEL = "gemini-2.5-flash"
UPSTREAM_FILES = "https://generativelanguage.googleapis.com/v1beta/files/"
FILE_403 = "You do not have permission to access the File {} or it may not exist."
CACHE_403 = {"error": {"code": 403, "message": "CachedContent not found (or permission denied)",
                       "status": "PERMISSION_DENIED"}}


def native(fake: FakeGemini, method: str = "generateContent") -> str:
    """The URL of a native method of MODEL on the fake."""
    return f"{fake.base_url}/v1beta/models/{MODEL}:{method}"


def with_file(uri: str, snake: bool = False) -> dict:
    """A generateContent body whose user turn carries a file part."""
    part = {"file_data": {"file_uri": uri}} if snake else {"fileData": {"mimeType": "text/plain", "fileUri": uri}}
    return {"contents": [{"role": "user", "parts": [{"text": "summarise"}, part]}]}


def chat(fake: FakeGemini, key: str, body: dict) -> requests.Response:
    """POST an OpenAI-compatible chat body with `key` as the bearer."""
    return requests.post(f"{fake.openai_base_url}chat/completions", json=body,
                         headers={"Authorization": f"Bearer {key}"}, timeout=5)


@pytest.fixture
def owner_and_stranger(fake_gemini):
    """Two keys: the first owns a file and a cached content, the second owns nothing."""
    owner, stranger = fake_gemini.new_key(), fake_gemini.new_key()
    return owner, stranger, fake_gemini.add_file(owner), fake_gemini.add_cached_content(owner, model=MODEL)


# per-key resources

def test_helpers_return_names_and_store_resources_per_key(fake_gemini):
    key = fake_gemini.new_key()
    assert fake_gemini.add_file(key, name="abc123") == "files/abc123"
    assert fake_gemini.add_cached_content(key, name="cachedContents/xyz") == "cachedContents/xyz"
    minted = fake_gemini.add_file(key, mime_type="image/png")
    assert minted.startswith("files/") and minted != "files/abc123"
    store = fake_gemini.resources
    assert store.owner("files/abc123") == key and store.owns(key, "cachedContents/xyz")
    assert store.get(minted)["mimeType"] == "image/png"
    assert store.get(minted)["uri"] == UPSTREAM_FILES + minted.removeprefix("files/")
    assert store.get("cachedContents/xyz")["model"] == f"models/{MODEL}"
    assert [r["name"] for r in store.owned_by(key, "files")] == ["files/abc123", minted]
    with pytest.raises(ValueError):
        fake_gemini.add_file(fake_gemini.new_key(), name="abc123")


@pytest.mark.parametrize("method", ["generateContent", "streamGenerateContent", "countTokens"])
@pytest.mark.parametrize("form", ["short", "full-uri", "snake_case"])
def test_a_file_of_another_project_is_a_403(fake_gemini, owner_and_stranger, method, form):
    owner, stranger, file, _ = owner_and_stranger
    uri = file if form == "short" else UPSTREAM_FILES + file.removeprefix("files/")
    body = with_file(uri, snake=form == "snake_case")
    response = requests.post(native(fake_gemini, method), json=body, params={"alt": "sse"},
                             headers={"x-goog-api-key": stranger}, timeout=5)
    assert response.status_code == 403
    assert response.json() == {"error": {"code": 403, "message": FILE_403.format(file.removeprefix("files/")),
                                         "status": "PERMISSION_DENIED"}}
    own = requests.post(native(fake_gemini, method), json=body, params={"alt": "sse"},
                        headers={"x-goog-api-key": owner}, timeout=5)
    assert own.status_code == 200


def test_an_unknown_file_is_a_403_for_everyone(fake_gemini):
    response = requests.post(native(fake_gemini), json=with_file("files/nosuchfile"),
                             headers={"x-goog-api-key": fake_gemini.new_key()}, timeout=5)
    assert response.status_code == 403
    assert response.json()["error"]["message"] == FILE_403.format("nosuchfile")


def test_other_uris_are_not_gemini_files(fake_gemini):
    body = with_file("https://www.youtube.com/watch?v=abc")
    response = requests.post(native(fake_gemini), json=body, headers={"x-goog-api-key": "AIza-any"}, timeout=5)
    assert response.status_code == 200


def test_a_cached_content_of_another_project_is_a_403(fake_gemini, owner_and_stranger):
    owner, stranger, _, cache = owner_and_stranger
    body = {"contents": [{"parts": [{"text": "hi"}]}], "cachedContent": cache}
    response = requests.post(native(fake_gemini), json=body, headers={"x-goog-api-key": stranger}, timeout=5)
    assert (response.status_code, response.json()) == (403, CACHE_403)
    counted = {"generateContentRequest": {"model": f"models/{MODEL}", **body}}
    response = requests.post(native(fake_gemini, "countTokens"), json=counted,
                             headers={"x-goog-api-key": stranger}, timeout=5)
    assert (response.status_code, response.json()) == (403, CACHE_403)
    own = requests.post(native(fake_gemini), json=body, headers={"x-goog-api-key": owner}, timeout=5)
    assert own.status_code == 200


def test_the_sdk_sees_the_resource_403_as_a_client_error(fake_gemini, owner_and_stranger):
    _, stranger, file, cache = owner_and_stranger
    client = genai.Client(api_key=stranger, http_options=types.HttpOptions(base_url=fake_gemini.base_url))
    part = types.Part.from_uri(file_uri=UPSTREAM_FILES + file.removeprefix("files/"), mime_type="text/plain")
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=MODEL, contents=[part, "summarise"])
    assert (caught.value.code, caught.value.status) == (403, "PERMISSION_DENIED")
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=MODEL, contents="hi",
                                       config=types.GenerateContentConfig(cached_content=cache))
    assert caught.value.message == "CachedContent not found (or permission denied)"


@pytest.mark.parametrize("where", ["extra_body", "top-level google", "top-level"])
def test_openai_cached_content_of_another_project_is_an_array_wrapped_403(fake_gemini, owner_and_stranger, where):
    owner, stranger, _, cache = owner_and_stranger
    google = {"cached_content": cache}
    extra = {"extra_body": {"extra_body": {"google": google}}, "top-level google": {"google": google},
             "top-level": google}[where]
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], **extra}
    response = chat(fake_gemini, stranger, body)
    assert (response.status_code, response.json()) == (403, [CACHE_403])
    assert chat(fake_gemini, owner, body).status_code == 200


def test_openai_image_url_of_another_projects_file_is_an_array_wrapped_403(fake_gemini, owner_and_stranger):
    owner, stranger, file, _ = owner_and_stranger
    client = openai.OpenAI(api_key=stranger, base_url=fake_gemini.openai_base_url, max_retries=0)
    content = [{"type": "text", "text": "describe"},
               {"type": "image_url", "image_url": {"url": UPSTREAM_FILES + file.removeprefix("files/")}}]
    with pytest.raises(openai.PermissionDeniedError) as caught:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": content}])
    assert caught.value.body == [{"error": {"code": 403, "status": "PERMISSION_DENIED",
                                            "message": FILE_403.format(file.removeprefix("files/"))}}]
    owned = openai.OpenAI(api_key=owner, base_url=fake_gemini.openai_base_url, max_retries=0)
    owned.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": content}])


def test_references_and_file_names():
    body = {"contents": [{"parts": [{"fileData": {"fileUri": "files/a"}},
                                    {"file_data": {"file_uri": UPSTREAM_FILES + "b"}}]}],
            "systemInstruction": {"parts": [{"fileData": {"fileUri": "https://example.com/files/c"}}]},
            "cachedContent": "cachedContents/x",
            "extra_body": {"google": {"cached_content": "cachedContents/y"}},
            "messages": [{"content": [{"image_url": {"url": "files/d"}}, {"image_url": "data:image/png;base64,AA"}]}]}
    assert references(body) == (["cachedContents/x", "cachedContents/y"], ["files/a", "files/b", "files/d"])
    assert file_name("https://generativelanguage.googleapis.com/v1/files/q") == "files/q"
    assert file_name("https://generativelanguage.googleapis.com/v1beta/files/q/extra") is None


# credentials

def test_header_and_query_keys_are_both_checked(fake_gemini):
    good = fake_gemini.new_key()
    fake_gemini.remove_key("AIza-revoked")
    url = native(fake_gemini)
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    bad_query = requests.post(url, json=body, params={"key": "AIza-revoked"}, headers={"x-goog-api-key": good},
                              timeout=5)
    assert bad_query.status_code == 400
    assert bad_query.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    call = fake_gemini.last_request
    assert call.credentials == [("header", good), ("query", "AIza-revoked")]
    assert (call.key, call.key_source) == (good, "header")
    bad_header = requests.post(url, json=body, params={"$key": good}, headers={"x-goog-api-key": "nope"},
                               timeout=5)
    assert bad_header.json()["error"]["message"] == faults.KEY_INVALID_MESSAGE
    assert fake_gemini.last_request.credentials == [("header", "nope"), ("query", good)]
    both_good = requests.post(url, json=body, params={"key": good}, headers={"x-goog-api-key": good}, timeout=5)
    assert both_good.status_code == 200


def test_a_bearer_next_to_a_key_header_is_an_oauth_401_on_native_paths(fake_gemini):
    key = fake_gemini.new_key()
    response = requests.post(native(fake_gemini), json={"contents": [{"parts": [{"text": "hi"}]}]},
                             headers={"x-goog-api-key": key, "Authorization": "Bearer vault-key-123"}, timeout=5)
    assert response.status_code == 401
    assert response.json()["error"]["details"][0]["reason"] == "ACCESS_TOKEN_TYPE_UNSUPPORTED"
    assert fake_gemini.last_request.credentials == [("header", key), ("bearer", "vault-key-123")]


def test_exactly_one_credential_is_recorded_for_sdk_calls(fake_gemini):
    client = genai.Client(api_key="AIza-one", http_options=types.HttpOptions(base_url=fake_gemini.base_url))
    client.models.generate_content(model=MODEL, contents="hi")
    assert fake_gemini.last_request.credentials == [("header", "AIza-one")]
    oai = openai.OpenAI(api_key="AIza-two", base_url=fake_gemini.openai_base_url, max_retries=0)
    oai.models.list()
    assert fake_gemini.last_request.credentials == [("bearer", "AIza-two")]


def test_openai_path_checks_every_key_it_is_given(fake_gemini):
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    response = requests.post(f"{fake_gemini.openai_base_url}chat/completions", json=body,
                             headers={"Authorization": "Bearer AIza-fine", "x-goog-api-key": "bogus"}, timeout=5)
    assert response.status_code == 400 and response.json()[0]["error"]["status"] == "INVALID_ARGUMENT"
    assert fake_gemini.last_request.credentials == [("bearer", "AIza-fine"), ("header", "bogus")]


def test_other_credentials_are_recorded(fake_gemini):
    response = requests.get(f"{fake_gemini.base_url}/v1beta/models", params={"access_token": "ya29.x"},
                            headers={"Authorization": "Basic dTpw"}, timeout=5)
    assert response.status_code == 401
    assert fake_gemini.last_request.credentials == [("authorization", "Basic dTpw"), ("access_token", "ya29.x")]


# key-fault bodies

def _inner(fault) -> dict:
    return json.loads(fault.body())["error"]


@pytest.mark.parametrize(("fault", "code", "status", "reason", "message"), [
    (faults.key_expired(), 400, "INVALID_ARGUMENT", "API_KEY_INVALID", "API key expired. Please renew the API key."),
    (faults.key_expired(reason="API_KEY_EXPIRED"), 400, "INVALID_ARGUMENT", "API_KEY_EXPIRED", "API key expired."),
    (faults.key_leaked(), 403, "PERMISSION_DENIED", None, "Your API key was reported as leaked."),
    (faults.service_disabled("123"), 403, "PERMISSION_DENIED", "SERVICE_DISABLED",
     "Generative Language API has not been used in project 123 before or it is disabled."),
    (faults.consumer_suspended("AIzaSyXYZ"), 403, "PERMISSION_DENIED", "CONSUMER_SUSPENDED",
     "Permission denied: Consumer 'api_key:AIzaSyXYZ' has been suspended."),
    (faults.billing_disabled("123"), 403, "PERMISSION_DENIED", "BILLING_DISABLED",
     "This API method requires billing to be enabled."),
    (faults.key_service_blocked("StreamGenerateContent"), 403, "PERMISSION_DENIED", "API_KEY_SERVICE_BLOCKED",
     "Requests to this API generativelanguage.googleapis.com method google.ai.generativelanguage.v1beta."
     "GenerativeService.StreamGenerateContent are blocked."),
    (faults.key_referrer_blocked(), 403, "PERMISSION_DENIED", "API_KEY_HTTP_REFERRER_BLOCKED", "Requests from referer"),
    (faults.key_ip_blocked(), 403, "PERMISSION_DENIED", "API_KEY_IP_ADDRESS_BLOCKED", "The provided API key has an IP"),
    (faults.file_denied("files/abc123"), 403, "PERMISSION_DENIED", None, FILE_403.format("abc123")),
    (faults.cached_content_denied(), 403, "PERMISSION_DENIED", None, CACHE_403["error"]["message"]),
])
def test_key_fault_envelopes(fault, code, status, reason, message):
    inner = _inner(fault)
    assert (fault.status, inner["code"], inner["status"]) == (code, code, status)
    assert inner["message"].startswith(message)
    infos = [d for d in inner.get("details", []) if d["@type"].endswith("google.rpc.ErrorInfo")]
    assert [d["reason"] for d in infos] == ([reason] if reason else [])
    for info in infos:
        assert info["domain"] == "googleapis.com"
        assert info["metadata"]["service"] == "generativelanguage.googleapis.com"
    if reason and reason != "API_KEY_SERVICE_BLOCKED":
        localized = [d for d in inner["details"] if d["@type"].endswith("LocalizedMessage")]
        assert localized == [{"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US",
                              "message": inner["message"]}]


def test_consumer_suspended_names_project_and_key_in_metadata():
    info = _inner(faults.consumer_suspended("AIzaSyXYZ", project="42"))["details"][0]
    assert info["metadata"] == {"service": "generativelanguage.googleapis.com", "consumer": "projects/42",
                                "containerInfo": "api_key:AIzaSyXYZ"}


def test_service_disabled_carries_activation_help():
    details = _inner(faults.service_disabled("77"))["details"]
    url = "https://console.developers.google.com/apis/api/generativelanguage.googleapis.com/overview?project=77"
    assert details[0]["metadata"]["activationUrl"] == url
    assert details[-1] == {"@type": "type.googleapis.com/google.rpc.Help",
                           "links": [{"description": "Google developers console API activation", "url": url}]}


@pytest.mark.parametrize("fault", [faults.key_expired(), faults.consumer_suspended(), faults.billing_disabled(),
                                   faults.service_disabled()])
def test_key_faults_reach_the_openai_sdk_wrapped_in_an_array(fake_gemini, fault):
    fake_gemini.enqueue(fault)
    client = openai.OpenAI(api_key="AIza-k", base_url=fake_gemini.openai_base_url, max_retries=0)
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == fault.status
    assert caught.value.body == [{"error": fault.error}]
