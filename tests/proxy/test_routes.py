"""The allow-list: which (method, path, query) become which upstream call, and what is refused."""

import pytest

from vault.errors import BadRequest, MethodNotAllowed, NotFound
from vault.proxy.routes import ACTION_NAMES, resolve

MODEL = "gemini-2.5-flash"


def call(method, path, query=(), bearer=False):
    return resolve(method, path, list(query), bearer)


@pytest.mark.parametrize("version", ["v1beta", "v1"])
@pytest.mark.parametrize(("method", "suffix", "action", "upstream", "billable"), [
    ("GET", "models", "models.list", "/{v}/models", False),
    ("GET", f"models/{MODEL}", "models.get", f"/{{v}}/models/{MODEL}", False),
    ("POST", f"models/{MODEL}:generateContent", "generateContent", f"/{{v}}/models/{MODEL}:generateContent", True),
    ("POST", f"models/{MODEL}:streamGenerateContent", "streamGenerateContent",
     f"/{{v}}/models/{MODEL}:streamGenerateContent", True),
    ("POST", f"models/{MODEL}:countTokens", "countTokens", f"/{{v}}/models/{MODEL}:countTokens", False),
    ("POST", "models/gemini-embedding-001:embedContent", "embedContent",
     "/{v}/models/gemini-embedding-001:embedContent", True),
    ("POST", "models/gemini-embedding-001:batchEmbedContents", "batchEmbedContents",
     "/{v}/models/gemini-embedding-001:batchEmbedContents", True),
])
def test_native_calls_map_to_their_upstream_path(version, method, suffix, action, upstream, billable):
    resolved = call(method, f"/{version}/{suffix}")
    assert resolved.action.name == action and resolved.action.dialect == "google"
    assert resolved.upstream_path == upstream.format(v=version)
    assert resolved.action.billable is billable


@pytest.mark.parametrize(("method", "path", "bearer", "action", "upstream"), [
    ("POST", "/v1/chat/completions", True, "chat.completions", "/v1beta/openai/chat/completions"),
    ("POST", "/v1/embeddings", True, "embeddings", "/v1beta/openai/embeddings"),
    ("GET", "/v1/models", True, "openai.models", "/v1beta/openai/models"),
    ("GET", f"/v1/models/{MODEL}", True, "openai.models.get", f"/v1beta/openai/models/{MODEL}"),
    ("POST", "/v1beta/openai/chat/completions", True, "chat.completions", "/v1beta/openai/chat/completions"),
    ("POST", "/v1beta/openai/embeddings", False, "embeddings", "/v1beta/openai/embeddings"),
    ("GET", "/v1beta/openai/models", True, "openai.models", "/v1beta/openai/models"),
    ("GET", f"/v1beta/openai/models/{MODEL}", True, "openai.models.get", f"/v1beta/openai/models/{MODEL}"),
])
def test_openai_compatible_calls(method, path, bearer, action, upstream):
    resolved = call(method, path, bearer=bearer)
    assert (resolved.action.name, resolved.action.dialect, resolved.upstream_path) == (action, "openai", upstream)


def test_shared_v1_models_follows_the_auth_style():
    assert call("GET", "/v1/models", bearer=False).action.name == "models.list"
    assert call("GET", "/v1/models", bearer=True).action.name == "openai.models"


@pytest.mark.parametrize("path", [
    "/v1beta/openai/models/../chat/completions",
    "/v1beta/models/x/../../files",
    "/v1/models/./gemini-2.5-flash:generateContent",
    "/v1beta/models/gemini-2.5-flash/..:generateContent",
    "/v1beta/models/..:generateContent",
    "/v1beta/models/...:generateContent",
    "/v1beta/models//gemini-2.5-flash:generateContent",
    "/v1beta//models/gemini-2.5-flash:generateContent",
    "/v1beta/models/gemini-2.5-flash:generateContent/",
    "/v1beta/models/gemini?key=AIzaX:generateContent",
    "/v1beta/models/gemini#frag:generateContent",
    "/v1beta/models/%2E%2E:generateContent",
    "/v1beta/models%2Fgemini-2.5-flash:generateContent",
    "/v1beta%2Fmodels%2Fgemini-2.5-flash:countTokens",
    "/v1/chat%2Fcompletions",
    "/v1beta/openai%2fchat%2fcompletions",
    "/v1beta/models/gemini%5C..:generateContent",
    "//v1beta/models",
    "///v1beta/models/gemini-2.5-flash:generateContent",
    "/v1beta/models/gemini%FF:generateContent",
    "/v1beta/models/gemini%0A:generateContent",
    "/v1beta/models/gemini%252E:generateContent",
    "/v1beta/models/gem ini:generateContent",
    "/v1beta/models/gem\\..\\files:generateContent",
    "/v1beta/models/gemini;key=x:generateContent",
    "/v1beta/models/gemini\x00:generateContent",
    "/v1beta/models/gemini\u2024\u2024:generateContent",
    "/v1beta/models/-gemini:generateContent",
    "/v1beta/models/_x:generateContent",
    "/v1beta/models/" + "a" * 200 + ":generateContent",
    "/v1beta/openai/models/%2E%2E",
])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_malformed_paths_are_400(path, method):
    with pytest.raises(BadRequest):
        call(method, path)


@pytest.mark.parametrize("path", [
    "/v1beta/files/abc/def", "/v1/files/abc:download", "/v1beta/cachedContents/x/y", "/upload/v1beta/models",
    "/upload/v2/files", "/upload/v1beta/files/abc", "/v1beta/tunedModels/x:generateContent",
    "/v1beta/batches", "/v1beta/operations/x", "/v1beta/corpora",
    "/v1beta/models/gemini-2.5-flash:fooBar", "/v1beta/models/gemini-2.5-flash:GenerateContent",
    "/v1beta/models/gemini-2.5-flash:generateContent:x", "/v1beta/models/a/b:generateContent",
    "/v1beta/models/gemini-2.5-flash:predict", "/v1beta/models/gemini-2.5-flash:batchGenerateContent",
    "/v1beta/openai/files", "/v1beta/openai/batches", "/v1beta/openai/images/edits", "/v1/images/edits",
    "/v1beta/openai/models/a/b", "/v1beta/openai/chat", "/v1/chat", "/v2/models", "/v1beta",
])
def test_unknown_paths_are_404(path):
    with pytest.raises(NotFound):
        call("POST", path)
    with pytest.raises((NotFound, MethodNotAllowed)):
        call("GET", path)


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "PUT", "PATCH", "DELETE", "TRACE", "get"])
@pytest.mark.parametrize("path", ["/v1beta/models", f"/v1/models/{MODEL}", f"/v1beta/models/{MODEL}:generateContent",
                                  "/v1/chat/completions", "/v1beta/openai/embeddings"])
def test_other_methods_are_405(method, path):
    with pytest.raises(MethodNotAllowed) as refused:
        call(method, path)
    assert refused.value.headers["Allow"] in {"GET", "POST"}


STREAM = f"/v1beta/models/{MODEL}:streamGenerateContent"


@pytest.mark.parametrize(("query", "kept"), [
    ([("alt", "sse")], [("alt", "sse")]),
    ([("alt", "json")], []),
    ([("key", "gv-x"), ("alt", "sse")], [("alt", "sse")]),
    ([("Key", "AIza-smuggled"), ("foo", "bar"), ("KEY", "x")], []),
])
def test_stream_query_keeps_only_alt(query, kept):
    assert call("POST", STREAM, query).query == kept


@pytest.mark.parametrize("query", [
    [("alt", "media")], [("alt", "proto")], [("alt", "SSE")], [("alt", "sse"), ("alt", "json")],
    [("fields", "candidates")], [("$fields", "candidates")], [("FIELDS", "candidates")], [("prettyPrint", "false")],
    [("$alt", "sse")], [("callback", "x")], [("quotaUser", "victim")], [("access_token", "ya29")],
    [("oauth_token", "ya29")], [("$.xgafv", "2")], [("upload_protocol", "raw")], [("uploadType", "media")],
    [("$prettyPrint", "true")], [("userIp", "1.2.3.4")],
])
def test_system_parameters_are_refused(query):
    with pytest.raises(BadRequest):
        call("POST", STREAM, query)


@pytest.mark.parametrize(("query", "kept"), [
    ([("pageSize", "2")], [("pageSize", "2")]),
    ([("pageSize", "1"), ("pageToken", "PAGE2TOKEN")], [("pageSize", "1"), ("pageToken", "PAGE2TOKEN")]),
    ([("pageToken", "Cg4KDGdlbWluaS0yLjAtZmxhc2g=")], [("pageToken", "Cg4KDGdlbWluaS0yLjAtZmxhc2g=")]),
])
def test_models_list_keeps_paging(query, kept):
    assert call("GET", "/v1beta/models", query).query == kept


@pytest.mark.parametrize("query", [[("pageSize", "0")], [("pageSize", "1001")], [("pageSize", "-1")],
                                   [("pageSize", "1e3")], [("pageToken", "a&key=b")], [("pageToken", "x" * 600)]])
def test_bad_paging_is_400(query):
    with pytest.raises(BadRequest):
        call("GET", "/v1beta/models", query)


def test_encoded_plain_characters_decode_once():
    resolved = call("POST", "/v1beta/models/gemini%2D2.5%2Dflash:generateContent")
    assert resolved.model == "gemini-2.5-flash"
    assert resolved.upstream_path == "/v1beta/models/gemini-2.5-flash:generateContent"


def test_a_trailing_newline_is_not_a_model_id():
    with pytest.raises(BadRequest):
        call("POST", "/v1beta/models/gemini-2.5-flash%0A:generateContent")


def test_generate_keeps_no_query_and_model_is_reencoded():
    resolved = call("POST", f"/v1beta/models/{MODEL}:generateContent", [("alt", "json"), ("debug", "1")])
    assert resolved.query == [] and resolved.model == MODEL


def test_action_names_are_a_fixed_set():
    assert "other" not in ACTION_NAMES and len(ACTION_NAMES) == 22
