"""Files and caches in the browser: the admin user page, the pool's warnings, the dashboard's revoke note.

The records are written straight into the stack's database (the upload flow has tests of its
own); screenshots land next to the other pages' in `tests/artifacts/screenshots/`.
"""

from datetime import timedelta

import requests
import sqlalchemy as sa

from tests.ui.test_browser import chromium, page, shoot  # noqa: F401  (fixtures, used by name)
from vault.clock import utcnow
from vault.models import StoredResource

BLANK = {"size_bytes": 0, "token_count": 0, "mime_type": "", "display_name": "", "model": ""}


def seed_resources(stack) -> int:
    """Three of ada's resources on the stack's first key, one expired; ada's user id."""
    engine = sa.create_engine(stack.environ["DATABASE_URL"])
    now, pooled = utcnow(), stack.pool()
    with engine.begin() as connection:
        user_id, key_id = connection.execute(sa.text(
            "SELECT users.id, api_keys.id FROM users JOIN api_keys ON api_keys.user_id = users.id "
            "WHERE users.email = 'ada@example.com'")).one()
        rows = [
            {"kind": "file", "name": "files/report-q3", "display_name": "Q3 report.pdf", "mime_type": "application/pdf",
             "size_bytes": 3 * 1024**2 + 200_000, "expires_at": now + timedelta(hours=40)},
            {"kind": "cache", "name": "cachedContents/handbook", "display_name": "handbook", "token_count": 48_213,
             "model": "models/gemini-2.5-flash", "expires_at": now + timedelta(hours=1)},
            {"kind": "file", "name": "files/old-photo", "mime_type": "image/jpeg", "size_bytes": 812_000,
             "expires_at": now - timedelta(hours=2)},
        ]
        connection.execute(sa.insert(StoredResource.__table__), [
            BLANK | row | {"user_id": user_id, "api_key_id": key_id, "upstream_key_id": pooled[0]["id"], "resource": {},
                   "created_at": now - timedelta(minutes=10 - index)} for index, row in enumerate(rows)])
    engine.dispose()
    return user_id


def test_files_and_caches_pages(own_stack, page):  # noqa: F811  (the fixture imported above)
    stack = own_stack(key_count=2)
    base, user_id = stack.base_url, seed_resources(stack)
    held = {key["id"]: key["resources_held"] for key in stack.pool()}
    assert sorted(held.values()) == [0, 2]

    page.goto(f"{base}/login?next=/admin/users/{user_id}")
    page.get_by_label("Email").fill("root@example.com")
    page.get_by_label("Password").fill("admin password")
    page.get_by_role("button", name="Log in").click()
    section = page.get_by_test_id("user-resources")
    assert "files/report-q3" in section.inner_text() and "3.2 MiB" in section.inner_text()
    assert "expired" in section.inner_text() and "48,213" in section.inner_text()
    section.scroll_into_view_if_needed()
    shoot(page, "admin-user-resources")

    page.goto(f"{base}/admin/keys")
    masked = stack.pool()[0]["key"]
    messages: list[str] = []
    page.on("dialog", lambda dialog: messages.append(dialog.message))
    page.get_by_role("button", name=f"Disable key {masked}").click()
    assert "answer 409 until it is enabled again" in messages[-1]
    assert "files/report-q3 (ada@example.com)" in messages[-1]
    assert page.get_by_text("unreachable while disabled").is_visible()
    page.get_by_text("Which, and whose").click()
    shoot(page, "admin-pool-resources")
    answer = requests.get(f"{base}/admin/api/users/{user_id}/resources", headers=stack.admin(), timeout=10).json()
    assert {item["name"]: item["state"] for item in answer["resources"]} == {
        "files/report-q3": "key_disabled", "cachedContents/handbook": "key_disabled", "files/old-photo": "expired"}

    page.get_by_role("button", name="Log out").click()
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill("long enough")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("button", name="Revoke key tests").click()
    assert "your only active key: your 2 file(s)" in messages[-1]
