"""Class 1 -- path escapes: nothing but an allow-listed (method, path) reaches the upstream.

Every attempt is written on the wire as it is (see `probe.send`) and must be refused with a
400/404/405 in the caller's dialect, with no upstream call, no change to the pool and no
upstream key in the answer.
"""

import json

import pytest
import requests

from tests.e2e.hostile.probe import (
    CHAT,
    EMBED,
    NATIVE_EMBED,
    PROMPT,
    assert_dialect,
    assert_no_secret_in,
    assert_no_upstream_call,
    auth_for,
    pool_health,
    send,
    send_bytes,
)

# Spellings of a dot-segment: plain, percent-encoded in every case mix, double-encoded,
# unicode look-alikes (fullwidth, one-dot leader, ideographic, small full stop), the
# overlong UTF-8 form, IIS-style %u and a three-dot run.
DOTS = ["..", ".", "...", "%2E%2E", "%2e%2e", "%2E%2e", "%2e%2E", ".%2E", "%2e.", "%2E", "%252E%252E",
        "%252e%252e", "%25%32%45%25%32%45", "%EF%BC%8E%EF%BC%8E", "%E2%80%A4%E2%80%A4", "%E3%80%82%E3%80%82",
        "%EF%B9%92%EF%B9%92", "%C0%AE%C0%AE", "%u002e%u002e", "..%00", "..%20", "..%09"]
# (method, target with {d} for a dot-segment, the dialect the answer must be in)
DOT_TEMPLATES = [
    ("POST", "/v1beta/openai/models/{d}/chat/completions", "openai"),
    ("POST", "/v1beta/openai/embeddings/{d}/chat/completions", "openai"),
    ("POST", "/v1beta/openai/{d}/openai/chat/completions", "openai"),
    ("POST", "/v1/chat/{d}/chat/completions", "openai"),
    ("GET", "/v1beta/models/x/{d}/{d}/files", "google"),
    ("GET", "/v1/models/x/{d}/{d}/files", "google"),
    ("GET", "/v1beta/models/{d}/cachedContents", "google"),
    ("POST", "/v1beta/models/{d}/{d}/tunedModels/x:generateContent", "google"),
    ("POST", "/v1/models/gemini-2.5-flash:countTokens/{d}/gemini-2.5-flash:generateContent", "google"),
]
DOT_CASES = [(method, template.format(d=dot), dialect) for method, template, dialect in DOT_TEMPLATES
             for dot in DOTS]
# Separators and dot-segments spelt with encoded slashes and backslashes.
SEPARATOR_CASES = [
    ("GET", "/v1beta/models/x/..%2F..%2Ffiles", "google"),
    ("GET", "/v1beta/models/x/..%2f..%2ffiles", "google"),
    ("GET", "/v1beta/models/x%2F..%2F..%2Ffiles", "google"),
    ("GET", "/v1/models/x%2F%2E%2E%2F%2E%2E%2Fcorpora", "google"),
    ("GET", "/v1beta/models/x/%2E%2E%2F%2E%2E%2Fbatches", "google"),
    ("GET", "/v1beta/models/x%252F..%252F..%252Ffiles", "google"),
    ("GET", "/v1beta/models/x\\..\\..\\files", "google"),
    ("GET", "/v1beta/models/x/..\\..\\files", "google"),
    ("GET", "/v1beta/models/x%5C..%5C..%5Cfiles", "google"),
    ("GET", "/v1beta/models/x%5c%2e%2e%5c%2e%2e%5cfiles", "google"),
    ("POST", "/v1beta/openai/models%2F..%2Fchat%2Fcompletions", "openai"),
    ("POST", "/v1beta/openai/models%2f%2e%2e%2fchat%2fcompletions", "openai"),
    ("POST", "/v1beta/openai/models\\..\\chat\\completions", "openai"),
    ("POST", "/v1beta/models\\gemini-2.5-flash:generateContent", "google"),
    ("POST", "/v1beta/models%5Cgemini-2.5-flash:generateContent", "google"),
    ("POST", "/v1beta/models/gemini-2.5-flash%2F:generateContent", "google"),
    ("POST", "/v1/chat%2F..%2Fchat/completions", "openai"),
    ("POST", "/v1beta/models/tunedModels%2Fmy-model:generateContent", "google"),
    ("POST", "/v1beta/models/files%2Fabc:generateContent", "google"),
    # An encoded slash standing for a real separator: the raw target names no allow-listed path.
    ("POST", "/v1beta/models%2Fgemini-2.5-flash:generateContent", "google"),
    ("POST", "/v1beta%2Fmodels%2Fgemini-2.5-flash:countTokens", "google"),
    ("GET", "/v1beta/models%2fgemini-2.5-flash", "google"),
    ("POST", "/v1/chat%2Fcompletions", "openai"),
    ("POST", "/v1beta/openai%2Fchat%2Fcompletions", "openai"),
]
# Characters that must never be part of a path segment, in the model and after the action.
ODD = ["%3F", "%3f", "%3Fkey%3DAIzaSmuggled", "%23", "%23frag", "%00", "%0A", "%0D", "%0D%0AX-Foo:%20bar", "%09",
       "%20", ";", "%3B", ";x=y", "%3Bx%3Dy", "@", "%40", "~", "%25", "%252F", "*", "%2A", ",", "'", "%22", "%3C",
       "!", "$", "(", "+", "%2B", "&", "="]
ODD_TEMPLATES = [
    ("POST", "/v1beta/models/gemini-2.5-flash{c}:generateContent", "google"),
    ("POST", "/v1/models/gemini-2.5-flash:generateContent{c}", "google"),
    ("POST", "/v1beta/models/gemini-2.5-flash:countTokens{c}", "google"),
    ("GET", "/v1beta/models{c}", "google"),
    ("POST", "/v1/chat/completions{c}", "openai"),
    ("POST", "/v1beta/openai/chat{c}/completions", "openai"),
]
ODD_CASES = [(method, template.format(c=c), dialect) for method, template, dialect in ODD_TEMPLATES for c in ODD]
EMPTY_SEGMENT_CASES = [
    ("GET", "/v1beta//models", "google"),
    ("GET", "/v1//models", "google"),
    ("POST", "/v1beta/models//gemini-2.5-flash:generateContent", "google"),
    ("POST", "/v1//chat/completions", "google"),
    ("POST", "/v1/chat//completions", "openai"),
    ("POST", "/v1beta/openai//chat/completions", "openai"),
    ("POST", "/v1beta/openai/chat/completions//", "openai"),
    ("GET", "/v1beta/models/", "google"),
    ("GET", "/v1/models/gemini-2.5-flash/", "google"),
    ("POST", "/v1beta/models/gemini-2.5-flash:generateContent/", "google"),
    ("POST", "/v1/chat/completions/", "openai"),
    ("POST", "/v1/embeddings/", "openai"),
    ("GET", "/v1beta/openai/models/", "openai"),
    # Leading slashes: a target of its own, not the same path.
    ("GET", "//v1beta/models", "google"),
    ("POST", "///v1beta/models/gemini-2.5-flash:generateContent", "google"),
]
ACTIONS = [":fooBar", ":generateContent/extra", ":GenerateContent", ":generatecontent",
           ":generateContent:generateContent", ":streamGenerateContent%20", ":batchGenerateContent",
           ":asyncBatchEmbedContent", ":predict", ":predictLongRunning", ":bidiGenerateContent", ":generateAnswer",
           ":embedText", ":countMessageTokens", ":generateMessage", ":rand123", ":", "::generateContent",
           ":countTokens:generateContent"]
ACTION_CASES = [("POST", f"/{version}/models/gemini-2.5-flash{action}", "google")
                for version in ("v1beta", "v1") for action in ACTIONS]
NOT_SERVED_CASES = [
    (method, target, dialect)
    for target, dialect in [
        ("/v1beta/tunedModels", "google"), ("/v1beta/tunedModels/my-model:generateContent", "google"),
        ("/v1/tunedModels/my-model", "google"), ("/v1beta/files/abc123", "google"),
        ("/v1beta/cachedContents/abc", "google"), ("/v1beta/files/abc123:download", "google"),
        ("/v1beta/batches", "google"), ("/v1beta/batches/b1:cancel", "google"), ("/v1beta/operations", "google"),
        ("/v1beta/corpora", "google"), ("/v1beta/generatedFiles", "google"), ("/v1beta/fileSearchStores", "google"),
        ("/v1beta/dynamic/x", "google"), ("/upload/v1beta/files", "google"),
        ("/upload/v1beta/files?uploadType=resumable", "google"), ("/v1alpha/models", "html"),
        ("/v1beta/models/gemini-2.5-flash/operations/op1", "google"),
        ("/v1beta/tunedModels/my-model/operations", "google"), ("/v1beta/openai/files", "openai"),
        ("/v1beta/openai/batches", "openai"), ("/v1beta/openai/images/edits", "openai"),
        ("/v1/images/edits", "openai"), ("/v1/images/variations", "openai"),
        ("/v1beta/openai/audio/speech", "openai"), ("/v1beta/openai/v1/chat/completions", "openai"),
        ("/v1/openai/chat/completions", "google"), ("/v1/completions", "google"), ("/v1/responses", "google"),
        ("/v1beta/chat/completions", "google"), ("/v1beta/embeddings", "google"),
    ]
    for method in ("GET", "POST", "DELETE")
]
OVERLONG_CASES = [
    ("POST", "/v1beta/models/" + "a" * 129 + ":generateContent", "google"),
    ("GET", "/v1/models/" + "g" * 3000, "google"),
    ("GET", "/v1beta/models/" + "a/" * 500 + "b", "google"),
    ("POST", "/v1beta/models/" + "../" * 300 + "files", "google"),
    ("POST", "/v1/chat/completions" + "/x" * 600, "openai"),
    ("POST", "/v1beta/openai/models/" + "%2E%2E/" * 200 + "chat/completions", "openai"),
]


def body_for(method: str, target: str, dialect: str):
    if method == "GET":
        return None
    if dialect == "openai":
        return EMBED if "embeddings" in target else CHAT
    return NATIVE_EMBED if "mbed" in target else PROMPT


def attempt(stack, method, target, dialect, statuses=(400, 404, 405), headers=None):
    """One refused attempt: status and dialect, no upstream call, the pool as it was, no key in the answer."""
    before = pool_health(stack)
    json_body = method != "GET"
    answer = send(stack, method, target, auth_for(stack, dialect, json_body) if headers is None else headers,
                  body_for(method, target, dialect))
    if dialect == "html":
        assert answer.status == 404 and (answer.header("Content-Type") or "").startswith("text/html")
    else:
        assert_dialect(answer, statuses, dialect)
    assert_no_upstream_call(stack)
    assert pool_health(stack) == before
    assert_no_secret_in(stack, answer.text())
    return answer


def case_id(case) -> str:
    method, target, _ = case
    return f"{method} {target[:90]}"


@pytest.mark.parametrize("case", DOT_CASES, ids=case_id)
def test_dot_segments_in_any_spelling_are_refused(stack, case):
    attempt(stack, *case)


@pytest.mark.parametrize("case", SEPARATOR_CASES, ids=case_id)
def test_encoded_slashes_and_backslashes_are_refused(stack, case):
    attempt(stack, *case)


@pytest.mark.parametrize("case", ODD_CASES, ids=case_id)
def test_characters_outside_a_segment_are_refused(stack, case):
    attempt(stack, *case)


@pytest.mark.parametrize("case", EMPTY_SEGMENT_CASES, ids=case_id)
def test_empty_segments_and_trailing_slashes_are_refused(stack, case):
    attempt(stack, *case)


@pytest.mark.parametrize("case", ACTION_CASES, ids=case_id)
def test_unknown_actions_are_404(stack, case):
    attempt(stack, *case, statuses=(400, 404))


@pytest.mark.parametrize("case", NOT_SERVED_CASES, ids=case_id)
def test_resources_the_vault_does_not_serve_are_refused(stack, case):
    attempt(stack, *case)


@pytest.mark.parametrize("target", ["/v1beta/files", "/v1/files", "/v1beta/cachedContents", "/v1/cachedContents"])
def test_resource_lists_come_from_the_vaults_records_not_upstream(stack, target):
    """Google's list would show every user of the project: the Vault answers from its own records."""
    answer = requests.get(f"{stack.base_url}{target}", headers={"x-goog-api-key": stack.vault_key}, timeout=30)
    assert answer.status_code == 200 and "files" not in answer.json() and "cachedContents" not in answer.json()
    assert stack.fake.calls == []


@pytest.mark.parametrize("case", OVERLONG_CASES, ids=lambda case: f"{case[0]} {len(case[1])} chars")
def test_overlong_paths_are_refused(stack, case):
    attempt(stack, *case)


@pytest.mark.parametrize("target", [
    b"/v1beta/models/x/\xef\xbc\x8e\xef\xbc\x8e/\xef\xbc\x8e\xef\xbc\x8e/files",
    b"/v1beta/models/gemini\xe2\x80\xa42.5-flash:generateContent",
    b"/v1beta/models/x/\xc0\xae\xc0\xae/files",
    b"/v1beta/openai/models/\xe3\x80\x82\xe3\x80\x82/chat/completions",
    b"/v1beta/models/gemini-2.5-flash\xae:generateContent",
], ids=lambda target: target.decode("latin-1")[:60])
def test_raw_non_ascii_bytes_in_the_target_are_refused(stack, target):
    """Bytes http.client would not write: the request line itself carries UTF-8 / latin-1."""
    before = pool_health(stack)
    body = json.dumps(CHAT if b"openai" in target else PROMPT).encode()
    head = (b"POST " + target + b" HTTP/1.1\r\nHost: vault\r\nContent-Type: application/json\r\n"
            + f"x-goog-api-key: {stack.vault_key}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode())
    answer = send_bytes(stack, head + body)
    assert 400 <= answer.status < 500
    if answer.body.startswith(b"{"):
        assert_dialect(answer, (400, 404), "openai" if b"openai" in target else "google")
    assert_no_upstream_call(stack)
    assert pool_health(stack) == before


def test_an_absolute_form_target_with_dot_segments_is_refused(stack):
    for target in ("http://evil.example/v1beta/models/x/../../files",
                   "http://127.0.0.1/v1beta/openai/models/%2E%2E/chat/completions"):
        attempt(stack, "GET" if "files" in target else "POST", target,
                "google" if "files" in target else "openai")


GET_PATHS = ["/v1beta/models", "/v1/models", "/v1beta/models/gemini-2.5-flash", "/v1/models/gemini-2.5-flash",
             "/v1beta/openai/models", "/v1beta/openai/models/gemini-2.5-flash"]
POST_PATHS = [f"/{version}/models/gemini-2.5-flash:{action}" for version in ("v1beta", "v1")
              for action in ("generateContent", "streamGenerateContent", "countTokens", "embedContent",
                             "batchEmbedContents")] + [
    "/v1/chat/completions", "/v1/embeddings", "/v1beta/openai/chat/completions", "/v1beta/openai/embeddings"]


def native_or_openai(path: str, bearer: bool) -> str:
    if path.startswith(("/v1/chat", "/v1/embeddings", "/v1beta/openai/")):
        return "openai"
    shared = path == "/v1/models" or (path.startswith("/v1/models/") and ":" not in path)
    return "openai" if bearer and shared else "google"


@pytest.mark.parametrize("bearer", [False, True], ids=["x-goog-api-key", "bearer"])
@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "PUT", "PATCH", "DELETE", "TRACE", "PROPFIND"])
def test_other_methods_on_every_proxied_path_are_refused_without_an_upstream_call(stack, method, bearer):
    """4xx in the dialect (a HEAD answer has no body: its status and type are checked); no usage record."""
    usage_before = usage_total(stack)
    for path in GET_PATHS + POST_PATHS:
        dialect = native_or_openai(path, bearer)
        before = pool_health(stack)
        answer = send(stack, method, path, auth_for(stack, "openai" if bearer else "google", json_body=False))
        assert_dialect(answer, (400, 404, 405), "head" if method == "HEAD" else dialect)
        assert_no_upstream_call(stack)
        assert pool_health(stack) == before
    assert usage_total(stack) == usage_before, "a refusal before authentication leaves no usage record"


@pytest.mark.parametrize("path", GET_PATHS)
def test_a_body_method_on_a_read_only_path_is_405(stack, path):
    attempt(stack, "POST", path, "google" if not path.startswith("/v1beta/openai") else "openai", statuses=(405,))


@pytest.mark.parametrize("path", POST_PATHS)
def test_a_get_on_a_generating_path_is_405(stack, path):
    attempt(stack, "GET", path, native_or_openai(path, False), statuses=(405,))


def usage_total(stack) -> int:
    response = requests.get(f"{stack.base_url}/admin/api/usage", headers=stack.admin(), timeout=10)
    assert response.status_code == 200
    return response.json()["total"]


def balance(stack) -> dict:
    me = requests.get(f"{stack.base_url}/auth/users/me", timeout=10,
                      headers={"Authorization": f"Bearer {stack.user_token}"}).json()
    return {name: me[name] for name in ("balance_nano_usd", "spend_nano_usd", "request_count", "total_tokens")}


# Targets a path-prefix rule would have classed as a free call (models.get/list, countTokens)
# that try to land on a billable upstream method instead.
FREE_LOOKING = [
    ("POST", "/v1beta/models/gemini-2.5-flash:countTokens/../gemini-2.5-flash:generateContent"),
    ("POST", "/v1beta/models/gemini-2.5-flash:countTokens/%2E%2E/gemini-2.5-flash:generateContent"),
    ("POST", "/v1beta/models/gemini-2.5-flash:countTokens%2F..%2Fgemini-2.5-flash:streamGenerateContent"),
    ("POST", "/v1beta/models/gemini-2.5-flash:countTokens:generateContent"),
    ("POST", "/v1beta/models/gemini-2.5-flash:countTokens%3AgenerateContent"),
    ("POST", "/v1beta/models/gemini-2.5-flash:countTokens;generateContent"),
    ("POST", "/v1beta/models/gemini-2.5-flash:countTokens%3F%3Agenerate"),
    ("POST", "/v1beta/models/gemini-2.5-flash/../gemini-2.5-flash:generateContent"),
    ("POST", "/v1beta/models/gemini-2.5-flash"),
    ("POST", "/v1beta/models"),
    ("POST", "/v1beta/models/%2E%2E/openai/chat/completions"),
    ("POST", "/v1beta/openai/models/gemini-2.5-flash/../../chat/completions"),
    ("POST", "/v1beta/openai/models/%2e%2e/%2e%2e/chat/completions"),
    ("POST", "/v1/models/x/..%2F..%2Fchat/completions"),
    ("GET", "/v1beta/models/gemini-2.5-flash:generateContent"),
    ("GET", "/v1beta/openai/chat/completions"),
]


def test_no_free_looking_path_reaches_a_billable_upstream_method(stack):
    money, usage = balance(stack), usage_total(stack)
    for method, target in FREE_LOOKING:
        dialect = "openai" if target.startswith(("/v1beta/openai", "/v1/chat")) else "google"
        for override in (None, "GET", "POST"):
            headers = auth_for(stack, dialect) + ([("X-HTTP-Method-Override", override)] if override else [])
            answer = send(stack, method, target, headers, CHAT if dialect == "openai" else PROMPT)
            assert_dialect(answer, (400, 404, 405), dialect)
    assert_no_upstream_call(stack)
    assert balance(stack) == money and usage_total(stack) == usage
