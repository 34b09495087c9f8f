"""The Content-Security-Policy in a real browser: no page trips it, Swagger UI included."""

from tests.ui.test_browser import chromium  # noqa: F401  (a fixture, used by name)

REPORT_VIOLATIONS = """document.addEventListener("securitypolicyviolation", function (event) {
  console.error("CSP violation: " + event.violatedDirective + " " + event.blockedURI + " at " + event.sourceFile);
});"""
ADMIN_PAGES = ["/admin/", "/admin/users", "/admin/users/1", "/admin/keys", "/admin/prices", "/admin/usage",
               "/account/password"]


def test_no_page_violates_the_content_security_policy(own_stack, chromium):  # noqa: F811
    base = own_stack(key_count=1).base_url
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.add_init_script(REPORT_VIOLATIONS)
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text or "CSP violation" in message.text else None)
    page.on("dialog", lambda dialog: dialog.accept())

    page.goto(f"{base}/docs#/operations/healthz")
    page.wait_for_selector(".opblock")
    page.get_by_role("button", name="Try it out").first.click()
    page.get_by_role("button", name="Execute").first.click()
    page.wait_for_selector(".live-responses-table")

    page.goto(f"{base}/register")
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill("root@example.com")
    page.get_by_label("Password").fill("admin password")
    page.get_by_role("button", name="Log in").click()
    page.get_by_label("Key name").fill("laptop")
    page.get_by_role("button", name="Create key").click()
    page.locator("#new-key-value").click()
    assert page.evaluate("document.activeElement.selectionEnd - document.activeElement.selectionStart") > 40
    page.goto(f"{base}/admin/invites")
    page.get_by_label("Note").fill("for Grace")
    page.get_by_role("button", name="Create invite").click()
    assert "/register?invite=gvi-" in page.locator("#new-invite-url").input_value()
    for path in ADMIN_PAGES:
        page.goto(base + path)
        assert page.locator("h1").first.is_visible(), path
    context.close()
    assert violations == []
