"""The audit trail page in the browser: a few admin actions, then the page at desktop and phone width
(no sideways scrolling: the wide table scrolls inside its card). Screenshots in `tests/artifacts/screenshots/`."""

import requests

from tests.ui.test_browser import chromium, page, shoot  # noqa: F401  (fixtures, used by name)
from tests.ui.test_policy_pages import DESKTOP, PHONE, assert_fits, log_in


def act_as_admin(stack) -> None:
    """A balance change, a price, an alias with defaults (a long before/after) and a disabled pool key."""
    base, admin = stack.base_url, stack.admin()
    users = requests.get(f"{base}/admin/api/users", headers=admin, timeout=10).json()
    ada = next(user["id"] for user in users if user["email"] == "ada@example.com")
    pooled = requests.get(f"{base}/admin/api/upstream-keys", headers=admin, timeout=10).json()["upstream_keys"]
    calls = [
        ("PATCH", f"/admin/api/users/{ada}", {"balance_delta": 25, "reason": "invoice 1042"}),
        ("PUT", "/admin/api/prices/gemini-2.5-flash", {"input": 0.3, "output": 2.5}),
        ("PUT", "/admin/api/model-aliases/careful", {"target": "gemini-2.5-flash", "defaults": {
            "generationConfig": {"temperature": 0.1, "topP": 0.5, "maxOutputTokens": 2048},
            "systemInstruction": {"parts": [{"text": "Answer carefully and cite every source you rely on."}]}}}),
        ("PATCH", f"/admin/api/upstream-keys/{pooled[0]['id']}", {"state": "disabled", "label": "spare"}),
    ]
    for method, path, body in calls:
        response = requests.request(method, f"{base}{path}", json=body, headers=admin, timeout=10)
        assert response.status_code == 200, response.text


def test_the_audit_page_at_desktop_and_phone_width(own_stack, page):  # noqa: F811  (the fixture)
    stack = own_stack(key_count=2, VAULT_SETTLE_DELAY_MS="0")
    act_as_admin(stack)
    log_in(page, stack.base_url, "root@example.com", "admin password", "/admin/audit")
    table = page.get_by_test_id("audit-table")
    text = table.inner_text()
    for action in ("user.balance", "price.put", "alias.put", "pool.update"):
        assert action in text
    assert "invoice 1042" in text and "root@example.com" in text and "disabled" in text
    shoot(page, "admin-audit")

    page.get_by_label("Action (or a prefix)").fill("pool.")
    page.get_by_role("button", name="Filter").click()
    assert "action=pool." in page.url
    assert "pool.update" in page.get_by_test_id("audit-table").inner_text()
    assert "user.balance" not in page.get_by_test_id("audit-table").inner_text()

    page.set_viewport_size(PHONE)
    page.goto(f"{stack.base_url}/admin/audit")
    assert_fits(page, PHONE["width"])
    scroller = page.get_by_test_id("audit-scroll")
    assert scroller.evaluate("el => el.scrollWidth > el.clientWidth"), "the wide table scrolls inside its card"
    shoot(page, "admin-audit-phone")
    page.set_viewport_size(DESKTOP)
