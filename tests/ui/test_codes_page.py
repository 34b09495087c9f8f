"""Redemption codes in the browser: an admin mints a batch (shown once, with its CSV), a user redeems
one on the dashboard, and the codes page lists it — at desktop and phone widths, without sideways scrolling.

Screenshots land next to the other pages' in `tests/artifacts/screenshots/`.
"""

import csv
import io

from tests.ui.test_browser import chromium, page, shoot  # noqa: F401  (fixtures, used by name)
from tests.ui.test_policy_pages import DESKTOP, PHONE, assert_fits, log_in


def test_mint_download_redeem_and_list(own_stack, page, tmp_path):  # noqa: F811  (the fixture)
    stack = own_stack(key_count=1)
    base = stack.base_url
    log_in(page, base, "root@example.com", "admin password", "/admin/redemption-codes")
    page.get_by_label("Amount per code (USD)").fill("5")
    page.get_by_label("How many codes").fill("3")
    page.get_by_label("Expires after (days)").fill("30")
    page.get_by_label("Note").fill("Workshop, 12 May")
    page.get_by_role("button", name="Mint codes").click()
    codes = page.get_by_test_id("new-codes-list").input_value().split()
    assert len(codes) == 3 and all(code.startswith("gvr-") for code in codes)
    with page.expect_download() as download_info:
        page.get_by_test_id("new-codes-csv").click()
    saved = tmp_path / "codes.csv"
    download_info.value.save_as(saved)
    rows = list(csv.DictReader(io.StringIO(saved.read_text())))
    assert [row["code"] for row in rows] == codes and {row["amount_usd"] for row in rows} == {"5"}
    assert_fits(page, DESKTOP["width"])
    shoot(page, "admin-codes-minted")

    page.get_by_role("button", name="Open menu").click() if page.get_by_role(
        "button", name="Open menu").is_visible() else None
    page.get_by_role("button", name="Log out").click()
    log_in(page, base, "ada@example.com", "long enough", "/dashboard")
    page.get_by_label("Redemption code").fill(codes[0])
    page.get_by_role("button", name="Redeem").click()
    assert page.get_by_text(f"Code {codes[0][:10]}… added $5.00").is_visible()
    assert page.get_by_test_id("balance").inner_text() == "$105.00"
    page.get_by_label("Redemption code").fill(codes[0])
    page.get_by_role("button", name="Redeem").click()
    assert page.get_by_text("This redemption code has already been redeemed.").is_visible()
    page.set_viewport_size(PHONE)
    page.goto(f"{base}/dashboard#redeem")
    assert_fits(page, PHONE["width"])
    page.get_by_test_id("redeem").screenshot(path=str(tmp_path / "redeem-phone.png"))

    page.set_viewport_size(DESKTOP)
    page.get_by_role("button", name="Open menu").click() if page.get_by_role(
        "button", name="Open menu").is_visible() else None
    page.get_by_role("button", name="Log out").click()
    log_in(page, base, "root@example.com", "admin password", "/admin/redemption-codes")
    table = page.get_by_test_id("codes-table")
    assert table.get_by_text("ada@example.com").is_visible()
    assert table.locator("tbody tr").count() == 3 and "redeemed" in table.inner_text()
    assert not any(code in page.content() for code in codes), "the codes are shown once only"
    assert_fits(page, DESKTOP["width"])
    shoot(page, "admin-codes")
    page.set_viewport_size(PHONE)
    page.goto(f"{base}/admin/redemption-codes")
    assert_fits(page, PHONE["width"])
    shoot(page, "admin-codes-phone")
