"""The pages in headless Chromium (Debian's, driven by Playwright) against a real gunicorn server.

Screenshots of every page land in `tests/artifacts/screenshots/` (git-ignored).
"""

import os
import shutil
from pathlib import Path

import openai
import pytest
import requests

from tests.e2e.server import PROJECT_ROOT

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = PROJECT_ROOT / "tests" / "artifacts" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]


@pytest.fixture(scope="module")
def chromium():
    if not Path(CHROMIUM).exists():
        message = "Debian's chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # the "are you sure?" confirmations
    yield page
    context.close()


def shoot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_user_journey(own_stack, page):
    # Settled in the request: the dashboard opened right after a call shows it (batched
    # settlements land some milliseconds later; the billing tests cover those).
    stack = own_stack(key_count=2, VAULT_SETTLE_DELAY_MS="0")
    base = stack.base_url
    page.goto(f"{base}/register")
    shoot(page, "register")
    page.get_by_label("Email").fill("grace@example.com")
    page.get_by_label("Password", exact=True).fill("a long password")
    page.get_by_label("Repeat password").fill("a long password")
    page.get_by_role("button", name="Create account").click()
    assert page.get_by_text("Welcome to Gemini-Vault!").is_visible()
    page.get_by_role("button", name="Log out").click()
    assert page.get_by_text("You are logged out").is_visible()
    page.get_by_label("Email").fill("grace@example.com")
    page.get_by_label("Password").fill("a long password")
    page.get_by_role("button", name="Log in").click()
    assert page.url.endswith("/dashboard")

    page.get_by_label("Key name").fill("laptop")
    page.get_by_role("button", name="Create key").click()
    assert page.get_by_text("you will not see it again").is_visible()
    key = page.locator("#new-key-value").input_value()
    page.get_by_role("button", name="Copy key").click()
    assert page.evaluate("navigator.clipboard.readText()") == key
    shoot(page, "dashboard-new-key")

    client = openai.OpenAI(api_key=key, base_url=f"{base}/v1", max_retries=0)
    reply = client.chat.completions.create(model="gemini-2.5-flash", messages=[{"role": "user", "content": "Hi"}])
    assert reply.choices[0].message.content == "Echo: Hi"

    page.goto(f"{base}/dashboard")
    usage = page.get_by_test_id("usage-table")
    assert "gemini-2.5-flash" in usage.inner_text() and "chat.completions" in usage.inner_text()
    shoot(page, "dashboard")

    page.get_by_role("button", name="Revoke key laptop").click()
    assert page.get_by_text("was revoked").is_visible()
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="gemini-2.5-flash", messages=[{"role": "user", "content": "Hi"}])

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{base}/dashboard")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, "no sideways scrolling on a phone"
    page.get_by_role("button", name="Open menu").click()
    assert page.get_by_role("link", name="Dashboard").is_visible()
    shoot(page, "dashboard-phone")


def test_admin_journey(own_stack, page):
    stack = own_stack(key_count=1)
    base = stack.base_url
    page.goto(f"{base}/login?next=/admin/")
    shoot(page, "login")
    page.get_by_label("Email").fill("root@example.com")
    page.get_by_label("Password").fill("admin password")
    page.get_by_role("button", name="Log in").click()
    assert page.url.endswith("/admin/")
    shoot(page, "admin-overview")

    new_key = stack.fake.new_key()
    page.get_by_role("link", name="Key pool").first.click()
    page.get_by_label("Gemini API keys").fill(new_key)
    page.get_by_role("button", name="Add to pool").click()
    assert page.get_by_text("Added 1 key(s)").is_visible()
    assert new_key not in page.content()
    page.get_by_role("button", name=f"Check key {new_key[:4]}…{new_key[-4:]}").click()
    assert page.get_by_text("works").is_visible()
    shoot(page, "admin-pool")

    page.get_by_role("link", name="Users").click()
    page.get_by_role("link", name="ada@example.com").click()
    page.get_by_label("Add to balance").check()
    page.get_by_label("Amount (USD)").fill("5")
    page.get_by_label("Reason").fill("welcome bonus")
    page.get_by_role("button", name="Save balance").click()
    assert page.get_by_test_id("user-balance").inner_text() == "$105.00"
    assert page.get_by_text("welcome bonus").is_visible()
    shoot(page, "admin-user")

    generate = f"{base}/v1beta/models/gemini-2.5-flash:generateContent"
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    assert requests.post(generate, json=body, headers={"x-goog-api-key": stack.vault_key}, timeout=10).ok
    page.get_by_role("button", name="Deactivate").click()
    assert page.get_by_text("is now deactivated").is_visible()
    refused = requests.post(generate, json=body, headers={"x-goog-api-key": stack.vault_key}, timeout=10)
    assert refused.status_code == 403

    for name, path in (("admin-users", "/admin/users"), ("admin-prices", "/admin/prices"),
                       ("admin-usage", "/admin/usage")):
        page.goto(base + path)
        assert page.locator("h1").is_visible()
        shoot(page, name)
