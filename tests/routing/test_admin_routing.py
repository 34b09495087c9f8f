"""The routing admin API and page: validation rules, the listed settings, the stamp bump, the forms."""

import pytest

from tests.test_pages import csrf_token, log_in
from vault.billing.catalog import seed_models
from vault.billing.prices import PRICE_VERSION
from vault.extensions import db


def version() -> int:
    return db.session.scalar(db.select(PRICE_VERSION)) or 0  # no stamp row yet: the first bump makes it 1


@pytest.fixture
def models(app):
    seed_models(db.session)
    db.session.commit()


def test_aliases_are_created_listed_and_removed_with_a_stamp_bump(client, admin_headers):
    start = version()
    saved = client.put("/admin/api/model-aliases/nothink", headers=admin_headers, json={
        "target": "models/gemini-2.5-pro",
        "defaults": {"generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}, "tools": [{"google_search": {}}]}})
    assert saved.status_code == 200, saved.get_json()
    alias = saved.get_json()
    assert (alias["alias"], alias["target"]) == ("nothink", "gemini-2.5-pro")
    assert alias["openai_defaults"] == {"extra_body": {"google": {"thinking_config": {"thinking_budget": 0}}}}
    assert alias["native_only"] == ["tools"]
    assert version() == start + 1
    assert client.get("/admin/api/model-aliases", headers=admin_headers).get_json()["aliases"] == [alias]
    assert client.delete("/admin/api/model-aliases/nothink", headers=admin_headers).status_code == 204
    assert client.delete("/admin/api/model-aliases/nothink", headers=admin_headers).status_code == 404
    assert version() == start + 2


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/admin/api/model-aliases/fast", {"target": "gemini-2.5-flash", "colour": "red"}, "colour"),
    ("/admin/api/model-aliases/fast", {"target": "fast"}, "target"),
    ("/admin/api/model-aliases/fast", {"target": "no spaces"}, "target"),
    ("/admin/api/model-aliases/bad%20name", {"target": "gemini-2.5-flash"}, "alias"),
    ("/admin/api/model-aliases/quick", {"target": "other-alias"}, "target"),  # aliases do not chain
    ("/admin/api/model-aliases/gemini-2.5-flash", {"target": "gemini-2.5-pro"}, "alias"),  # shadows a model
    ("/admin/api/model-aliases/fast", {"target": "gemini-2.5-flash", "defaults": {"contents": []}}, "defaults"),
    ("/admin/api/model-aliases/fast", {"target": "gemini-2.5-flash", "defaults": {"tools": {}}}, "defaults.tools"),
    ("/admin/api/models/gemini-2.5-pro", {"hidden": True, "colour": "red"}, "colour"),
    ("/admin/api/models/gemini-2.5-pro", {"hidden": "yes"}, "hidden"),
    ("/admin/api/models/gemini-2.5-pro", {"fallback": ["gemini-2.5-pro"]}, "fallback"),
    ("/admin/api/models/gemini-2.5-pro", {"fallback": ["a", "a"]}, "fallback"),
    ("/admin/api/models/gemini-2.5-pro", {"fallback": ["other-alias"]}, "fallback"),
    ("/admin/api/models/other-alias", {"hidden": True}, "model"),  # set it on the target
])
def test_bad_routing_changes_are_refused(client, admin_headers, models, path, body, field):
    assert client.put("/admin/api/model-aliases/other-alias", json={"target": "gemini-2.5-flash"},
                      headers=admin_headers).status_code == 200
    start = version()
    response = client.put(path, json=body, headers=admin_headers)
    assert response.status_code == 400, response.get_json()
    assert field in response.get_json()["error"]["fields"]
    assert version() == start


def test_an_alias_target_cannot_become_an_alias(client, admin_headers):
    assert client.put("/admin/api/model-aliases/fast", json={"target": "my-model"},
                      headers=admin_headers).status_code == 200
    refused = client.put("/admin/api/model-aliases/my-model", json={"target": "gemini-2.5-flash"},
                         headers=admin_headers)
    assert refused.status_code == 400 and "alias" in refused.get_json()["error"]["fields"]


def test_models_list_their_routing_settings(client, admin_headers, models):
    start = version()
    saved = client.put("/admin/api/models/gemini-2.5-pro", json={"hidden": True, "fallback": ["gemini-2.5-flash"]},
                       headers=admin_headers)
    assert saved.status_code == 200
    assert (saved.get_json()["hidden"], saved.get_json()["fallback"]) == (True, ["gemini-2.5-flash"])
    assert client.put("/admin/api/models/my-tuned-model", json={"hidden": True},
                      headers=admin_headers).get_json()["source"] == "default"
    listed = {item["model"]: item for item in client.get("/admin/api/models", headers=admin_headers)
              .get_json()["models"]}
    assert listed["gemini-2.5-pro"]["fallback"] == ["gemini-2.5-flash"] and listed["gemini-2.5-pro"]["hidden"]
    assert listed["gemini-2.5-flash"]["hidden"] is False and listed["gemini-2.5-flash"]["fallback"] is None
    assert listed["my-tuned-model"]["hidden"] and listed["gemini-2.5-flash"]["source"] == "catalog"
    cleared = client.put("/admin/api/models/gemini-2.5-pro", json={}, headers=admin_headers).get_json()
    assert (cleared["hidden"], cleared["fallback"]) == (False, None)
    assert version() == start + 3


def test_routing_api_is_for_admins_only(client, make_user, auth_headers):
    user = auth_headers(make_user())
    assert client.get("/admin/api/model-aliases", headers=user).status_code == 403
    assert client.put("/admin/api/models/gemini-2.5-pro", json={"hidden": True}, headers=user).status_code == 403


@pytest.fixture
def admin_session(app, make_user):
    browser = app.test_client()
    make_user(email="root@example.com", is_admin=True)
    log_in(browser, "root@example.com")
    return browser


def test_the_models_page_shows_and_edits_the_routing_table(admin_session, models):
    page = admin_session.get("/admin/models")
    assert page.status_code == 200 and "Model routing" in page.get_data(as_text=True)
    token = csrf_token(admin_session, "/admin/models")
    saved = admin_session.post("/admin/models/aliases", data={
        "csrf_token": token, "alias": "fast", "target": "gemini-2.5-flash",
        "defaults": '{"generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}}'})
    assert saved.status_code == 302
    hidden = admin_session.post("/admin/models/settings", data={
        "csrf_token": token, "model": "gemini-2.0-flash", "hidden": "y", "fallback": "gemini-2.5-flash"})
    assert hidden.status_code == 302
    text = admin_session.get("/admin/models").get_data(as_text=True)
    assert "fast" in text and "thinking_budget" in text and "hidden" in text and "gemini-2.5-flash" in text
    refused = admin_session.post("/admin/models/aliases", data={"csrf_token": token, "alias": "x", "target": "x"})
    assert refused.status_code == 400 and "cannot point to itself" in refused.get_data(as_text=True)
    bad_json = admin_session.post("/admin/models/aliases", data={
        "csrf_token": token, "alias": "y", "target": "gemini-2.5-flash", "defaults": "[1]"})
    assert bad_json.status_code == 400 and "JSON object" in bad_json.get_data(as_text=True)
    removed = admin_session.post("/admin/models/aliases/fast/delete", data={"csrf_token": token})
    assert removed.status_code == 302
    assert "Models</a>" in admin_session.get("/admin/").get_data(as_text=True)
