"""The pool and model-routing pages in the browser, as an operator of a large pool sees them: a
pool of 60 keys with a check run from the page (its progress bar ends at "done"), and the
models page with an alias, a hidden model and a fallback; both at desktop and phone width
without sideways scrolling. Screenshots in `tests/artifacts/screenshots/`."""

import requests

from tests.ui.test_browser import chromium, page, shoot  # noqa: F401  (fixtures, used by name)
from tests.ui.test_policy_pages import DESKTOP, PHONE, assert_fits, log_in


def test_the_pool_page_with_many_keys_and_a_check_run(own_stack, page):  # noqa: F811  (the fixture)
    stack = own_stack(key_count=2, VAULT_SETTLE_DELAY_MS="0")
    keys = [stack.fake.new_key() for _ in range(58)]
    added = requests.post(f"{stack.base_url}/admin/api/upstream-keys", json={"keys": keys, "label": "batch-7"},
                          headers=stack.admin(), timeout=30)
    assert added.status_code == 201 and added.json()["added"] == 58
    stack.fake.remove_key(keys[0])  # one key Google no longer takes: the check disables it
    log_in(page, stack.base_url, "root@example.com", "admin password", "/admin/keys")
    assert "60 keys" in page.inner_text("#pool-title")
    page.get_by_role("button", name="Check all").click()
    page.locator('section[data-job-state="done"]').wait_for(timeout=60_000)  # the progress bar, polled
    page.reload()  # the page shows the finished job again, with the keys' new states
    assert "Last check finished" in page.inner_text("#job-title")
    shoot(page, "admin-pool")
    pool = requests.get(f"{stack.base_url}/admin/api/upstream-keys?state=disabled", headers=stack.admin(),
                        timeout=10).json()
    assert pool["total"] == 1

    page.set_viewport_size(PHONE)
    page.goto(f"{stack.base_url}/admin/keys")
    assert_fits(page, PHONE["width"])
    shoot(page, "admin-pool-phone")
    page.set_viewport_size(DESKTOP)


def test_the_models_page_with_an_alias_a_hidden_model_and_a_fallback(own_stack, page):  # noqa: F811
    stack = own_stack(key_count=1, VAULT_SETTLE_DELAY_MS="0")
    admin, base = stack.admin(), stack.base_url
    for method, path, body in [
        ("PUT", "/admin/api/model-aliases/fast", {"target": "gemini-2.5-flash"}),
        ("PUT", "/admin/api/model-aliases/gemini-2.5-flash-search",
         {"target": "gemini-2.5-flash", "defaults": {"tools": [{"google_search": {}}]}}),
        ("PUT", "/admin/api/models/gemini-2.0-flash", {"hidden": True, "fallback": None}),
        ("PUT", "/admin/api/models/gemini-2.5-pro", {"hidden": False, "fallback": ["gemini-2.5-flash"]}),
    ]:
        response = requests.request(method, f"{base}{path}", json=body, headers=admin, timeout=10)
        assert response.status_code == 200, response.text
    log_in(page, base, "root@example.com", "admin password", "/admin/models")
    aliases = page.get_by_test_id("aliases-table").inner_text()
    assert "fast" in aliases and "gemini-2.5-flash-search" in aliases and "google_search" in aliases
    assert "gemini-2.5-flash" in page.get_by_test_id("routing-models-table").inner_text()
    shoot(page, "admin-models")
    page.set_viewport_size(PHONE)
    page.goto(f"{base}/admin/models")
    assert_fits(page, PHONE["width"])
    shoot(page, "admin-models-phone")
    page.set_viewport_size(DESKTOP)
