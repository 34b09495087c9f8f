"""The admin alerts page in the browser: webhook and settings forms, the delivery log filled by a
real server's monitor, at desktop and phone widths (no sideways scrolling)."""

import time

import requests

from tests.alerts.receivers import Webhook
from tests.ui.test_browser import chromium, page, shoot  # noqa: F401  (fixtures, used by name)
from tests.ui.test_policy_pages import DESKTOP, PHONE, assert_fits, log_in


def wait_for_events(base: str, headers: dict, count: int) -> list[dict]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        events = requests.get(f"{base}/admin/api/alerts", headers=headers, timeout=10).json()["events"]
        if len(events) >= count and all(event["state"] in ("delivered", "failed") for event in events):
            return events
        time.sleep(0.2)
    raise AssertionError(f"alerts not delivered in time: {events}")


def test_the_alerts_page_shows_settings_and_the_delivery_log(own_stack, page):  # noqa: F811  (the fixture)
    receiver = Webhook(statuses=[500])
    try:
        stack = own_stack(key_count=1, VAULT_SETTLE_DELAY_MS="0", VAULT_ALERT_INTERVAL_SECONDS="0.5",
                          VAULT_ALERT_RETRY_SECONDS="0.5")
        base, admin = stack.base_url, stack.admin()
        log_in(page, base, "root@example.com", "admin password", "/admin/alerts")
        page.get_by_label("Webhook URL").fill(receiver.url)
        page.get_by_label("Signing secret").fill("a-long-signing-secret")
        page.get_by_role("button", name="Save webhook").click()
        assert page.get_by_text("Webhook saved").is_visible()
        page.get_by_label("Alert when fewer usable keys than").fill("2")
        page.get_by_role("button", name="Save settings").click()
        assert page.get_by_text("Alert settings saved").is_visible()
        users = requests.get(f"{base}/admin/api/users", headers=admin, timeout=10).json()
        ada = next(user["id"] for user in users if user["email"] == "ada@example.com")
        assert requests.patch(f"{base}/admin/api/users/{ada}", json={"low_balance_threshold": 1000},
                              headers=admin, timeout=10).status_code == 200
        events = wait_for_events(base, admin, 2)
        assert {event["type"] for event in events} == {"low_balance", "pool_low"}
        assert {event["state"] for event in events} == {"delivered"}
        assert max(event["attempts"] for event in events) == 2  # the first answer was a 500: retried

        page.goto(f"{base}/admin/alerts")
        log = page.get_by_test_id("alerts-table").inner_text()
        assert "ada@example.com is below their threshold" in log and "only 1 of 1 upstream keys" in log
        assert "a-long-signing-secret" not in page.content()
        shoot(page, "admin-alerts")
        page.set_viewport_size(PHONE)
        page.goto(f"{base}/admin/alerts")
        assert_fits(page, PHONE["width"])
        shoot(page, "admin-alerts-phone")
        page.set_viewport_size(DESKTOP)
        page.goto(f"{base}/admin/")
        assert "ada@example.com" in page.get_by_test_id("overview-alerts").inner_text()
    finally:
        receiver.close()
