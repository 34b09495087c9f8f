"""Every page at phone width (390 px) without sideways scrolling, the charts at desktop and phone
width, and the busy state of a form: "Save balance" clicked twice sends one request.

Screenshots land next to the other pages' in `tests/artifacts/screenshots/`.
"""

import json
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests

from tests.conftest import app_config
from tests.ui.test_browser import SHOTS, chromium, page, shoot  # noqa: F401  (fixtures, used by name)
from tests.ui.test_policy_pages import DESKTOP, PHONE, assert_fits, log_in
from vault import create_app

PAGE_PREFIXES = ("/admin", "/dashboard", "/account", "/docs")


def page_paths(user_id: int) -> list[str]:
    """Every HTML page a signed-in person can open, read from the app's own routes (new pages join by
    themselves); a page about one user is opened for `user_id`."""
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(app_config(Path(folder), DATABASE_URL="sqlite://"), environ={})
    paths = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or not rule.rule.startswith(PAGE_PREFIXES) or "/api/" in rule.rule:
            continue
        if rule.rule.endswith(".csv") or not set(rule.arguments) <= {"user_id"}:
            continue
        paths.append(rule.rule.replace("<int:user_id>", str(user_id)))
    return sorted(paths)


def make_traffic(stack) -> None:
    """Calls on two models, one of them refused upstream, so the charts have stacks and the key table rows."""
    for model, count in (("gemini-2.5-flash", 3), ("gemini-2.5-pro", 2)):
        for _ in range(count):
            reply = requests.post(f"{stack.base_url}/v1beta/models/{model}:generateContent",
                                  json={"contents": [{"parts": [{"text": "hi"}]}]},
                                  headers={"x-goog-api-key": stack.vault_key}, timeout=10)
            assert reply.ok, reply.text


def ada_id(stack) -> int:
    users = requests.get(f"{stack.base_url}/admin/api/users", headers=stack.admin(), timeout=10).json()
    return next(user["id"] for user in users if user["email"] == "ada@example.com")


def test_every_page_fits_a_phone_and_the_charts_read(own_stack, page):  # noqa: F811  (the fixture)
    stack = own_stack(key_count=2, VAULT_SETTLE_DELAY_MS="0")
    base, user_id = stack.base_url, ada_id(stack)
    make_traffic(stack)
    paths = page_paths(user_id)
    expected = {"/dashboard", "/admin/", "/admin/users", f"/admin/users/{user_id}", "/admin/keys", "/admin/prices",
                "/admin/usage", "/admin/invites", "/admin/models"}
    assert expected <= set(paths), sorted(expected - set(paths))

    log_in(page, base, "root@example.com", "admin password", "/admin/")
    page.set_viewport_size(PHONE)
    too_wide = {}
    for path in paths:
        response = page.goto(base + path)
        assert response.ok, (path, response.status)
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            too_wide[path] = width
            shoot(page, "too-wide" + path.replace("/", "-"))
    assert not too_wide, f"pages wider than a phone (px): {too_wide}"
    for size, suffix in ((DESKTOP, ""), (PHONE, "-phone")):
        page.set_viewport_size(size)
        page.goto(f"{base}/admin/")
        chart = page.get_by_test_id("chart-requests")
        assert chart.locator("svg[role=img]").get_attribute("aria-label").startswith("Requests per day")
        assert chart.locator("[data-value]").last.is_visible()  # the day's total, without hovering
        chart.get_by_text("Show as table").click()
        assert chart.locator("table").is_visible()
        assert "gemini-2.5-pro" in chart.locator("table").inner_text().lower()
        page.get_by_test_id("chart-requests").screenshot(path=str(shot_path(f"chart-admin-requests{suffix}")))
        page.get_by_test_id("key-usage").screenshot(path=str(shot_path(f"admin-key-usage{suffix}")))
        shoot(page, f"admin-overview{suffix}")

    page.context.clear_cookies()
    log_in(page, base, "ada@example.com", "long enough", "/dashboard")
    page.set_viewport_size(PHONE)
    for path in [path for path in paths if not path.startswith("/admin")]:
        assert page.goto(base + path).ok, path
        assert_fits(page, PHONE["width"])
    for size, suffix in ((DESKTOP, ""), (PHONE, "-phone")):
        page.set_viewport_size(size)
        page.goto(f"{base}/dashboard")
        section = page.get_by_test_id("chart-requests")
        assert "5 requests in all" in section.locator("svg").get_attribute("aria-label")
        section.screenshot(path=str(shot_path(f"chart-dashboard-requests{suffix}")))


def shot_path(name: str) -> Path:
    return SHOTS / f"{name}.png"


def test_save_balance_clicked_twice_sends_one_request(own_stack, page):  # noqa: F811  (the fixture)
    stack = own_stack(key_count=1)
    base, user_id = stack.base_url, ada_id(stack)
    log_in(page, base, "root@example.com", "admin password", "/admin/")
    page.goto(f"{base}/admin/users/{user_id}")
    sent = []
    page.on("request", lambda request: sent.append(request.url) if request.method == "POST" else None)
    page.get_by_label("Add to balance").check()
    page.get_by_label("Amount (USD)").fill("5")
    page.get_by_label("Reason").fill("double click")
    button = page.get_by_role("button", name="Save balance")
    with page.expect_navigation():
        button.dblclick()
    assert [url for url in sent if url.endswith("/balance")] == [f"{base}/admin/users/{user_id}/balance"]
    assert page.get_by_test_id("user-balance").inner_text() == "$105.00"
    assert page.get_by_text("balance matches the ledger").is_visible()


# Once a page shows a busy form, it reports the button's state to a route of the test's own. Installed as an
# init script, so it is in every document from its first node, whenever the test's page loads.
REPORT_BUSY = """new MutationObserver((_, observer) => {
    const button = document.querySelector("form[aria-busy=true] button[aria-busy=true]");
    if (!button) return;
    observer.disconnect();
    const state = [button.disabled, button.textContent, button.form.getAttribute("aria-busy")];
    fetch("/__busy-seen?state=" + encodeURIComponent(JSON.stringify(state)));
}).observe(document, {attributes: true, childList: true, subtree: true});"""


def test_a_sent_form_shows_it_is_working(own_stack, page):  # noqa: F811  (the fixture)
    stack = own_stack(key_count=1)
    base = stack.base_url
    page.add_init_script(REPORT_BUSY)
    log_in(page, base, "ada@example.com", "long enough", "/dashboard")
    # The form's POST is held until the page has reported its busy state, so that state is seen while
    # the request is really in flight, whatever the machine's load (no race with the navigation).
    held, seen = [], []

    def hold_the_post(route):
        if route.request.method != "POST" or seen:
            route.continue_()
        else:
            held.append(route)

    def busy_seen(route):
        seen.append(json.loads(parse_qs(urlsplit(route.request.url).query)["state"][0]))
        route.fulfill(status=204)
        while held:
            held.pop().continue_()

    page.route("**/dashboard/keys", hold_the_post)
    page.route("**/__busy-seen*", busy_seen)
    page.get_by_label("Key name").fill("slow")
    with page.expect_navigation(url=f"{base}/dashboard/keys"):
        page.get_by_role("button", name="Create key").click()
    assert seen == [[True, "Working…", "true"]]
    assert page.get_by_text("you will not see it again").is_visible()
