"""which model names a key's model lists are checked against, per dialect and per call.

`forwarding.model_names` gives `check_model` the routed model and `inbound.call.model`. On the
native path `call.model` is the name the caller used (an alias, say); on the OpenAI path it is
always "" (the model is in the body), so the name called is never checked there, only its
target. The same key calling the same alias is then admitted in one dialect and refused in
the other, whichever way the lists are written.
"""

import pytest

from tests.policies.test_enforcement import CHAT, PROMPT, closed, set_limits, set_policy


@pytest.fixture
def alias(client, make_user, auth_headers):
    admin = auth_headers(make_user(email="root@example.com", is_admin=True))

    def make(name: str, target: str) -> None:
        saved = client.put(f"/admin/api/model-aliases/{name}", json={"target": target}, headers=admin)
        assert saved.status_code == 200, saved.get_json()

    return make


def native(client, key, model):
    return closed(client.post(f"/v1beta/models/{model}:generateContent", json=PROMPT,
                              headers={"x-goog-api-key": key.plaintext}))


def chat(client, key, model):
    return closed(client.post(CHAT, json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
                              headers={"Authorization": f"Bearer {key.plaintext}"}))


@pytest.mark.parametrize(("globs", "name", "target"), [
    (["team-fast"], "team-fast", "gemini-2.5-flash"),            # a key given the alias only
    (["gemini-2.5-flash*"], "gemini-2.5-flash-max", "gemini-2.5-pro"),  # an alias whose name matches the glob
])
def test_an_alias_gets_the_same_answer_in_both_dialects(client, key, alias, globs, name, target):
    alias(name, target)
    set_policy(key, allowed_models=globs)
    google, openai = native(client, key, name), chat(client, key, name)
    assert google.status_code == openai.status_code, (
        f"allowed_models {globs}, alias {name!r} → {target!r}: native {google.status_code}, "
        f"OpenAI {openai.status_code} {openai.get_json()}")


def test_models_list_hides_what_the_owner_may_not_see(client, key, fake_gemini):
    """`visible_models`: "Models the user may see and call at all" (OpenAPI) — but models.list
    (no model named, so no check) lists every model of the upstream's catalog."""
    set_limits(key, visible_models=["gemini-2.5-flash*"])
    listed = closed(client.get("/v1beta/models", headers={"x-goog-api-key": key.plaintext}))
    assert listed.status_code == 200
    names = [model["name"].removeprefix("models/") for model in listed.get_json().get("models", [])]
    assert names and all(name.startswith("gemini-2.5-flash") for name in names), names
