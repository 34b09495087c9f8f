"""Key limits in the browser: the dashboard's standing of a policy-limited key and its edit form, and
the admin user page's limits, at desktop and phone widths (no sideways scrolling).

Screenshots land next to the other pages' in `tests/artifacts/screenshots/`.
"""

from datetime import UTC, datetime, timedelta

import openai
import requests

from tests.ui.test_browser import SHOTS, chromium, page, shoot  # noqa: F401  (fixtures, used by name)

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def log_in(browser_page, base: str, email: str, password: str, next_path: str) -> None:
    browser_page.goto(f"{base}/login?next={next_path}")
    browser_page.get_by_label("Email").fill(email)
    browser_page.get_by_label("Password").fill(password)
    browser_page.get_by_role("button", name="Log in").click()
    assert browser_page.url.endswith(next_path)


def assert_fits(browser_page, width: int) -> None:
    assert browser_page.evaluate("document.documentElement.scrollWidth") <= width, "no sideways scrolling"


def limit_everything(stack) -> tuple[int, int]:
    """ada's limits (set by the admin) and her key's policy (set by her); (her user id, the key's id)."""
    users = requests.get(f"{stack.base_url}/admin/api/users", headers=stack.admin(), timeout=10).json()
    user_id = next(user["id"] for user in users if user["email"] == "ada@example.com")
    limits = {"spend_cap": 5, "spend_cap_period": "day", "rate_limit_rpm": 60, "rate_limit_tpm": 200_000,
              "max_concurrency": 4, "visible_models": ["gemini-*"]}
    assert requests.patch(f"{stack.base_url}/admin/api/users/{user_id}", json={"limits": limits},
                          headers=stack.admin(), timeout=10).status_code == 200
    ada = {"Authorization": f"Bearer {stack.user_token}"}
    key_id = requests.get(f"{stack.base_url}/api-keys/", headers=ada, timeout=10).json()[0]["id"]
    policy = {"spend_cap": "0.5", "spend_cap_period": "day", "rate_limit_rpm": 30, "max_concurrency": 2,
              "allowed_models": ["gemini-2.5-flash*"], "allowed_ips": ["127.0.0.0/8", "::1/128"],
              "expires_at": (datetime.now(UTC) + timedelta(days=30)).isoformat()}
    changed = requests.patch(f"{stack.base_url}/api-keys/{key_id}", json=policy, headers=ada, timeout=10)
    assert changed.status_code == 200, changed.text
    return user_id, key_id


def test_key_limits_on_the_dashboard_and_the_admin_user_page(own_stack, page):  # noqa: F811  (the fixture)
    stack = own_stack(key_count=1, VAULT_SETTLE_DELAY_MS="0")
    base = stack.base_url
    user_id, key_id = limit_everything(stack)
    client = openai.OpenAI(api_key=stack.vault_key, base_url=f"{base}/v1", max_retries=0)
    for _ in range(2):
        client.chat.completions.create(model="gemini-2.5-flash", messages=[{"role": "user", "content": "Hi"}])

    log_in(page, base, "ada@example.com", "long enough", "/dashboard")
    card = page.get_by_test_id(f"key-policy-{key_id}")
    assert "2 of 30" in card.locator("[data-standing=rpm]").inner_text()
    assert "of $0.50" in card.locator("[data-standing=spend]").inner_text()
    assert "0 of 2" in card.locator("[data-standing=concurrency]").inner_text()
    assert "expires" in card.inner_text() and "gemini-2.5-flash*" in card.inner_text()
    assert "spend cap $5.00 a day" in page.get_by_test_id("account-limits").inner_text()
    card.scroll_into_view_if_needed()
    shoot(page, "dashboard-key-limits")

    card.locator("summary").click()
    card.get_by_label("Spend cap (USD)").fill("10")
    card.get_by_role("button", name="Save policy of tests").click()
    card = page.get_by_test_id(f"key-policy-{key_id}")
    assert "at most $5" in card.locator(f"#key{key_id}-spend_cap-error").inner_text(), "the ceiling, in the form"
    shoot(page, "dashboard-key-limits-refused")
    card.get_by_label("Spend cap (USD)").fill("1")
    card.get_by_role("button", name="Save policy of tests").click()
    assert page.get_by_text("Policy of key tests saved").is_visible()
    assert "of $1.00" in page.get_by_test_id(f"key-policy-{key_id}").locator("[data-standing=spend]").inner_text()

    page.set_viewport_size(PHONE)
    page.goto(f"{base}/dashboard#key-{key_id}")
    assert_fits(page, PHONE["width"])
    card = page.get_by_test_id(f"key-policy-{key_id}")
    card.locator("summary").click()
    assert_fits(page, PHONE["width"])
    shoot(page, "dashboard-key-limits-phone")
    card.screenshot(path=str(SHOTS / "dashboard-key-card-phone.png"))

    page.get_by_role("button", name="Open menu").click()
    page.get_by_role("button", name="Log out").click()
    page.set_viewport_size(DESKTOP)
    log_in(page, base, "root@example.com", "admin password", f"/admin/users/{user_id}")
    limits = page.get_by_test_id("user-limits")
    assert limits.get_by_label("Visible models").input_value() == "gemini-*"
    limits.get_by_label("Requests / minute").fill("50")
    limits.get_by_role("button", name="Save limits").click()
    assert page.get_by_text("Limits of ada@example.com saved").is_visible()
    assert "2 of 30" in page.get_by_test_id(f"key-policy-{key_id}").locator("[data-standing=rpm]").inner_text()
    shoot(page, "admin-user-limits")
    page.set_viewport_size(PHONE)
    page.goto(f"{base}/admin/users/{user_id}")
    assert_fits(page, PHONE["width"])
    page.get_by_test_id(f"key-policy-{key_id}").locator("summary").click()
    assert_fits(page, PHONE["width"])
    shoot(page, "admin-user-limits-phone")
