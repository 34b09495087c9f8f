"""Hostile query strings on the admin pages and APIs: a 4xx or a fallback, never a 5xx.

Each row of the tables names one query parameter of one admin GET route; every hostile value
is sent in it, and the values that drew a 5xx are listed in the failure.
"""

import pytest

from tests.test_pages import log_in

HOSTILE = [
    "", " ", "0", "-1", "-99999999999999999999", "+1", "1_000", "1e9", "0x10", "NaN", "inf", "1.5",
    "2147483648", "9223372036854775808", "9" * 30, "9" * 5000,  # past INTEGER, BIGINT and int()'s digit limit
    "²", "¹²", "٣", "①", "\u00a0", "%", "_", "' OR 1=1 --", "x" * 5000,
    "9999-12-31", "0001-01-01", "10000-01-01", "2026-02-30",
    "9999-12-31T23:00:00-05:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:30:00+01:00",
    "0001-01-01T00:00:00-23:59", "9999-12-31T23:59:59.999999+00:00", "2026-11-25T10:00:00+25:00",
]


PAGES = [
    ("/admin/usage", "user"), ("/admin/usage", "key"), ("/admin/usage", "model"),
    ("/admin/usage", "status"), ("/admin/usage", "since"), ("/admin/usage", "until"),
    ("/admin/usage", "page"),
    ("/admin/usage.csv", "user"), ("/admin/usage.csv", "key"),
    ("/admin/usage.csv", "status"), ("/admin/usage.csv", "since"), ("/admin/usage.csv", "until"),
    ("/admin/audit", "actor"), ("/admin/audit", "action"), ("/admin/audit", "since"), ("/admin/audit", "until"),
    ("/admin/audit", "page"),
    ("/admin/redemption-codes", "state"), ("/admin/redemption-codes", "batch"), ("/admin/redemption-codes", "page"),
    ("/admin/keys", "q"), ("/admin/keys", "state"), ("/admin/keys", "page"), ("/admin/keys", "per_page"),
    ("/admin/users", "q"), ("/admin/users", "sort"), ("/admin/users", "page"),
]

APIS = [
    *(("/admin/api/usage", name) for name in ("user_id", "api_key_id", "since", "until")),
    ("/admin/api/usage", "model"), ("/admin/api/usage", "status"), ("/admin/api/usage", "page"),
    ("/admin/api/usage", "per_page"),
    *(("/admin/api/usage/summary", name) for name in ("user_id", "since", "until")),
    ("/admin/api/audit", "actor"), ("/admin/api/audit", "action"), ("/admin/api/audit", "since"),
    ("/admin/api/audit", "until"), ("/admin/api/audit", "page"), ("/admin/api/audit", "per_page"),
    ("/admin/api/redemption-codes", "state"), ("/admin/api/redemption-codes", "batch"),
    ("/admin/api/redemption-codes", "page"), ("/admin/api/redemption-codes", "per_page"),
    ("/admin/api/alerts", "type"), ("/admin/api/alerts", "limit"),
    ("/admin/api/upstream-keys", "q"), ("/admin/api/upstream-keys", "state"), ("/admin/api/upstream-keys", "page"),
    ("/admin/api/upstream-keys", "per_page"), ("/admin/api/upstream-keys", "include_deleted"),
]

# PostgreSQL refuses a NUL inside text; the database error is then answered as a 503.
TEXT_FILTERS = [
    ("/admin/usage", "user"), ("/admin/usage", "model"), ("/admin/audit", "actor"), ("/admin/audit", "action"),
    ("/admin/redemption-codes", "batch"), ("/admin/keys", "q"), ("/admin/users", "q"),
    ("/admin/api/usage", "model"), ("/admin/api/audit", "actor"), ("/admin/api/audit", "action"),
    ("/admin/api/redemption-codes", "batch"), ("/admin/api/upstream-keys", "q"),
]


def answer(client, path: str, query: dict, headers: dict) -> int | str:
    """The status, or the error that broke the body as it streamed (a CSV export has sent its 200 by then)."""
    response = client.get(path, headers=headers, query_string=query)
    try:
        response.get_data()
    except Exception as exc:  # any error here is the finding
        return type(exc).__name__
    return response.status_code


def server_errors(client, path: str, name: str, values: list[str], headers: dict | None = None) -> list:
    """The values (shortened) that drew a 5xx from `path?name=value` or broke its body, with what happened."""
    failed = []
    for value in values:
        outcome = answer(client, path, {name: value}, headers or {})
        if isinstance(outcome, str) or outcome >= 500:
            failed.append((value[:40], outcome))
    return failed


@pytest.mark.parametrize(("path", "name"), PAGES)
def test_an_admin_page_never_answers_a_hostile_query_with_a_5xx(client, admin, path, name):
    log_in(client, admin.email)
    failed = server_errors(client, path, name, HOSTILE)
    assert not failed, failed


@pytest.mark.parametrize(("path", "name"), APIS)
def test_an_admin_api_never_answers_a_hostile_query_with_a_5xx(client, admin_headers, path, name):
    failed = server_errors(client, path, name, HOSTILE, admin_headers)
    assert not failed, failed


@pytest.mark.parametrize(("path", "name"), TEXT_FILTERS)
def test_a_nul_in_a_text_filter_is_not_a_5xx(client, admin, admin_headers, path, name):
    log_in(client, admin.email)
    failed = server_errors(client, path, name, ["\x00", "a\x00b"], admin_headers)
    assert not failed, failed


@pytest.mark.parametrize("path", ["/admin/api/redemption-codes", "/admin/api/invites"])
@pytest.mark.parametrize("moment", ["9999-12-31T23:00:00-05:00", "9999-12-31T23:59:59-01:00",
                                    "0001-01-01T00:30:00+01:00"])
def test_an_expiry_past_the_end_of_time_in_utc_is_a_400_naming_it(client, admin_headers, path, moment):
    """Western offsets on the last day (eastern ones on the first) fall outside the calendar in UTC."""
    response = client.post(path, headers=admin_headers, json={"amount": "1", "count": 1, "expires_at": moment})
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert "expires_at" in response.get_json()["error"]["fields"]


@pytest.mark.parametrize("path", ["/admin/api/redemption-codes", "/admin/api/invites"])
def test_an_expiry_at_the_last_moment_of_time_in_utc_is_taken(client, admin_headers, path):
    response = client.post(path, headers=admin_headers,
                           json={"amount": "1", "count": 1, "expires_at": "9999-12-31T23:59:59.999999+00:00"})
    assert response.status_code == 201, response.get_data(as_text=True)[:300]


@pytest.mark.parametrize("field", ["since", "until"])
@pytest.mark.parametrize("moment", ["9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+01:00"])
def test_audit_filter_past_the_edge_of_time_in_utc_is_a_400_naming_it(client, admin_headers, field, moment):
    response = client.get("/admin/api/audit", headers=admin_headers, query_string={field: moment})
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert field in response.get_json()["error"]["fields"]


@pytest.mark.parametrize("limit", ["²", "¹²", "①", "٣", "9" * 5000, "0", "201", "-1", " 5"])
def test_alerts_api_with_a_limit_that_is_not_1_to_200_in_ascii_digits_is_a_400(client, admin_headers, limit):
    """`"²".isdigit()` is True but `int("²")` raises."""
    response = client.get("/admin/api/alerts", headers=admin_headers, query_string={"limit": limit})
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert "limit" in response.get_json()["error"]["fields"]


@pytest.mark.parametrize("page", ["²", "①", "9" * 5000, "0", "-3"])
def test_codes_page_with_an_unreadable_page_number_shows_the_first_page(client, admin, page):
    log_in(client, admin.email)
    response = client.get("/admin/redemption-codes", query_string={"page": page})
    assert response.status_code == 200, response.status_code


@pytest.mark.parametrize("path", ["/admin/audit", "/admin/usage", "/admin/usage.csv"])
def test_a_page_until_the_last_day_of_time_has_no_upper_bound(client, admin, path):
    """`read_day(until, 1)` adds a day to 9999-12-31: past the calendar, so nothing is after it."""
    log_in(client, admin.email)
    response = client.get(path, query_string={"until": "9999-12-31"})
    assert response.status_code == 200, response.status_code


@pytest.mark.parametrize("user", ["²", "①", "2147483648", "9" * 30])
def test_usage_filter_by_a_user_id_no_user_can_have_is_a_400_next_to_the_field(client, admin, user):
    log_in(client, admin.email)
    response = client.get("/admin/usage", query_string={"user": user})
    assert response.status_code == 400
    assert "No such user." in response.get_data(as_text=True)
