"""The admin overview and the dashboard draw their charts per model, with axes, values and a table;
the overview shows requests and failures per upstream key over the last 24 hours."""

import re

from tests.billing.books import settlement
from tests.test_pages import log_in
from vault import pool
from vault.billing import ledger
from vault.billing.usage import Usage
from vault.extensions import db
from vault.runtime import runtime


def settle(user_id: int, **fields) -> None:
    session = runtime().session_factory()
    ledger.settle(session, settlement(user_id, **fields))
    session.close()


def test_the_overview_breaks_charts_down_by_model_and_shows_key_error_rates(app, make_user):
    make_user(email="root@example.com", is_admin=True)
    user = make_user()
    added = pool.add_upstream_keys(db.session, ["AIza" + "a" * 35, "AIza" + "b" * 35], runtime().secret_box)
    db.session.commit()
    good, bad = (result.key for result in added)
    for _ in range(3):
        settle(user.id, upstream_key_id=good.id, model="gemini-2.5-flash", cost=2_000_000)
    settle(user.id, upstream_key_id=bad.id, model="gemini-2.5-pro", status=429)
    settle(user.id, upstream_key_id=bad.id, model="gemini-2.5-pro", cost=1_000_000)
    browser = app.test_client()
    log_in(browser, "root@example.com")
    page = browser.get("/admin/").get_data(as_text=True)

    requests_chart = page[page.index('data-testid="chart-requests"'):page.index('data-testid="chart-spend"')]
    assert 'role="img"' in requests_chart and "5 requests in all" in requests_chart
    assert "by model: gemini-2.5-flash, gemini-2.5-pro" in requests_chart
    assert re.search(r"<title>\d\d-\d\d · gemini-2.5-pro: 2 requests</title>", requests_chart)
    assert re.search(r"data-value>5</text>", requests_chart)  # the day's value, visible without hovering
    assert "Show as table" in requests_chart and "<th scope=\"col\" class=\"text-right\">gemini-2.5-flash</th>" in (
        requests_chart)
    spend_chart = page[page.index('data-testid="chart-spend"'):]
    assert "$0.007 in all" in spend_chart

    usage = page[page.index('data-testid="key-usage"'):]
    usage = usage[:usage.index("</section>")]
    rows = re.findall(r"<tr>.*?</tr>", usage[usage.index("<tbody>"):], re.S)
    assert bad.masked in rows[0] and good.masked in rows[1]  # the failing key first
    cells = [re.sub(r"<[^>]+>|\s+", " ", row).split() for row in rows]
    assert cells[0][-4:] == ["active", "2", "1", "50.0%"]
    assert cells[1][-4:] == ["active", "3", "0", "0.0%"]


def test_the_dashboard_charts_only_the_users_own_traffic_by_model(app, make_user):
    me, other = make_user(email="me@example.com"), make_user()
    settle(me.id, model="gemini-2.5-flash", usage=Usage(prompt=1000, candidates=500, total=1500))
    settle(other.id, model="gemini-2.5-pro", usage=Usage(total=99))
    browser = app.test_client()
    log_in(browser, "me@example.com")
    page = browser.get("/dashboard").get_data(as_text=True)
    tokens = page[page.index('data-testid="chart-tokens"'):page.index('data-testid="chart-spend"')]
    assert "1,500 tokens in all" in tokens and "data-value>1.5k</text>" in tokens
    assert "gemini-2.5-pro" not in page[page.index('data-testid="chart-requests"'):]
