"""Class 2 -- query smuggling: credentials and Google's system parameters never reach the upstream.

Each smuggled query is either refused (400/401 in the caller's dialect, no upstream call)
or dropped (one upstream call whose query is exactly what the action documents, with one
pooled key as its only credential and no system parameter, field mask or method override).
The documented parameters (`alt=sse` on streams, `pageSize`/`pageToken` on models.list)
must arrive intact. These run on the private `pooled` Vault: a smuggled credential that got
through would draw API_KEY_INVALID and hurt the pool.
"""

import json

import pytest

from tests.e2e.hostile.probe import (
    CHAT,
    PROMPT,
    assert_clean_upstream_call,
    assert_dialect,
    assert_no_secret_in,
    assert_no_upstream_call,
    auth_for,
    only_call,
    pool_health,
    send,
)

SMUGGLED = "AIzaSySMUGGLED0000000000000000000000000"
# (method, client path, upstream path, dialect)
TARGETS = [
    ("POST", "/v1beta/models/gemini-2.5-flash:generateContent", "/v1beta/models/gemini-2.5-flash:generateContent",
     "google"),
    ("POST", "/v1/models/gemini-2.5-flash:streamGenerateContent", "/v1/models/gemini-2.5-flash:streamGenerateContent",
     "google"),
    ("GET", "/v1beta/models", "/v1beta/models", "google"),
    ("POST", "/v1/chat/completions", "/v1beta/openai/chat/completions", "openai"),
    ("GET", "/v1beta/openai/models", "/v1beta/openai/models", "openai"),
]
QUERIES = [
    "key={vk}&key={vk}", f"key={{vk}}&key={SMUGGLED}", f"key={SMUGGLED}&key={{vk}}", f"key={SMUGGLED}",
    f"$key={SMUGGLED}", f"%24key={SMUGGLED}", f"$Key={SMUGGLED}", f"KEY={SMUGGLED}", f"ke%79={SMUGGLED}",
    f"key%00={SMUGGLED}", f"x-goog-api-key={SMUGGLED}", f"X-Goog-Api-Key={SMUGGLED}",
    "access_token=ya29.smuggled", "$access_token=ya29.smuggled", "oauth_token=ya29.smuggled",
    "fields=candidates", "$fields=usageMetadata", "FIELDS=candidates", "fie%6Cds=candidates", "%24fields=x",
    "fields=candidates&fields=usageMetadata", "prettyPrint=false", "$prettyPrint=false", "prettyprint=0",
    "PrettyPrint=false", "alt=media", "alt=proto", "alt=json", "alt=sse", "$alt=sse", "$alt=media", "ALT=media",
    "%61lt=media", "alt=sse&alt=sse", "alt=json&alt=media", "alt=sse;enum-encoding=int", "alt=", "callback=evil",
    "$callback=evil", "quotaUser=someone", "$quotaUser=x", "userIp=203.0.113.9", "upload_protocol=raw",
    "uploadType=media", "$.xgafv=2", "requestReason=audit", "$requestReason=x", "userProject=other-project",
    "$userProject=other", "$ct=application%2Fjson", "$apiVersion=v1alpha", "$outputDefaults=true", "passwd=x",
    f"x=%3Fkey%3D{SMUGGLED}", f"x=1%26key%3D{SMUGGLED}", f"a=1;key={SMUGGLED}", "&&&==&=", f"x=1#key={SMUGGLED}",
]


def expected_query(upstream_path: str, query: str) -> dict:
    """What the upstream may get: only `alt=sse` on a stream, and only when the client asked for it."""
    return {"alt": ["sse"]} if upstream_path.endswith(":streamGenerateContent") and "alt=sse" in query else {}


def attempt(stack, method, path, upstream_path, dialect, query, headers=None):
    before = pool_health(stack)
    body = None if method == "GET" else CHAT if dialect == "openai" else PROMPT
    headers = auth_for(stack, dialect, body is not None) if headers is None else headers
    answer = send(stack, method, f"{path}?{query}", headers, body)
    calls = stack.fake.calls
    if not calls:
        assert_dialect(answer, (400, 401), dialect)
    else:
        assert answer.status == 200, answer.body[:300]
        assert_clean_upstream_call(stack, only_call(stack), upstream_path, dialect=dialect, method=method,
                                   query=expected_query(upstream_path, query))
    assert pool_health(stack) == before
    assert_no_secret_in(stack, answer.text())
    return answer


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("target", TARGETS, ids=lambda target: f"{target[0]} {target[1]}")
def test_smuggled_query_parameters_are_refused_or_dropped(pooled, target, query):
    attempt(pooled, *target, query.replace("{vk}", pooled.vault_key))


@pytest.mark.parametrize("target", TARGETS, ids=lambda target: f"{target[0]} {target[1]}")
def test_the_vault_key_in_the_query_alone_authenticates_and_stays_home(pooled, target):
    method, path, upstream_path, dialect = target
    headers = [("Content-Type", "application/json")] if method == "POST" else []
    answer = attempt(pooled, *target, f"key={pooled.vault_key}", headers=headers)
    assert answer.status == 200


@pytest.mark.parametrize("version", ["v1beta", "v1"])
def test_alt_sse_reaches_the_stream_intact(pooled, version):
    path = f"/{version}/models/gemini-2.5-flash:streamGenerateContent"
    for query in ("alt=sse", f"alt=sse&key={pooled.vault_key}", f"key={pooled.vault_key}&alt=sse"):
        pooled.fake.reset()
        answer = attempt(pooled, "POST", path, path, "google", query)
        assert answer.status == 200 and answer.header("Content-Type").startswith("text/event-stream")
        events = [json.loads(line[len(b"data: "):]) for line in answer.body.split(b"\r\n\r\n") if line]
        assert "".join(event["candidates"][0]["content"]["parts"][0]["text"] for event in events) == "Echo: Say hi"
        record = only_call(pooled)
        assert record.alt == "sse" and record.query_string == "alt=sse" and record.streamed


@pytest.mark.parametrize("version", ["v1beta", "v1"])
def test_page_size_and_page_token_reach_models_list_intact(pooled, version):
    path = f"/{version}/models"
    first = send(pooled, "GET", f"{path}?pageSize=2", auth_for(pooled, "google", False))
    assert_clean_upstream_call(pooled, only_call(pooled), path, query={"pageSize": ["2"]})
    token = first.json()["nextPageToken"]
    assert len(first.json()["models"]) == 2 and token
    for query in (f"pageSize=2&pageToken={token}", f"pageToken={token}&key={pooled.vault_key}&pageSize=2"):
        pooled.fake.reset()
        before = pool_health(pooled)
        answer = send(pooled, "GET", f"{path}?{query}", auth_for(pooled, "google", False))
        assert answer.status == 200 and answer.json()["models"]
        record = only_call(pooled)
        assert record.query == {"pageSize": ["2"], "pageToken": [token]}
        assert_clean_upstream_call(pooled, record, path, query={"pageSize": ["2"], "pageToken": [token]})
        assert pool_health(pooled) == before


@pytest.mark.parametrize("query", [
    "pageSize=0", "pageSize=1001", "pageSize=-1", "pageSize=1e3", "pageSize=%EF%BC%92", "pageSize=2%20",
    "pageSize=2&pageSize=3", "pageToken=a%26key%3DAIzaSmuggled", "pageToken=%00", "pageToken=" + "t" * 600,
    "pageToken=abc&pageToken=def", "pageSize=2%26fields%3Dmodels",
])
def test_bad_paging_parameters_are_refused_before_the_upstream(pooled, query):
    before = pool_health(pooled)
    answer = send(pooled, "GET", f"/v1beta/models?{query}", auth_for(pooled, "google", False))
    assert_dialect(answer, 400, "google")
    assert_no_upstream_call(pooled)
    assert pool_health(pooled) == before


def test_a_vault_key_put_into_the_path_is_not_written_to_the_log(pooled):
    """`%3Fkey%3D…` in the path is refused -- and the key it carries must not land in the access log."""
    paths = (f"/v1beta/models/gemini-2.5-flash:generateContent%3Fkey%3D{pooled.vault_key}",
             f"/v1/chat/completions%3Fkey%3D{pooled.vault_key}")
    for number, path in enumerate(paths):
        dialect = "openai" if "chat" in path else "google"
        answer = send(pooled, "POST", path, [("Content-Type", "application/json"),
                                             ("X-Request-Id", f"hostile-log-probe-{number}")],
                      CHAT if dialect == "openai" else PROMPT)
        assert_dialect(answer, (400, 401, 404), dialect)
    assert_no_upstream_call(pooled)
    assert pooled.server.wait_for_log(f"hostile-log-probe-{len(paths) - 1}", timeout=5)
    assert pooled.vault_key not in pooled.server.log(), "a caller's Vault key was written to the server log"


def test_the_logs_of_the_pool_vault_hold_no_upstream_key(pooled):
    """After everything above (smuggles, redirects to URLs carrying a pool key, foreign resources)."""
    assert_no_secret_in(pooled, pooled.server.log())
