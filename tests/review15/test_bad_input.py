"""Bad input to the issue-15 admin APIs and pages must be a 4xx, never a 500."""

import pytest

from tests.test_pages import csrf_token, log_in
from vault import pool
from vault.extensions import db
from vault.runtime import runtime

HUGE_ID = 10**20  # past every database's BIGINT


@pytest.fixture
def admin(make_user):
    return make_user(email="root@example.com", is_admin=True)


@pytest.fixture
def admin_headers(admin, auth_headers):
    return auth_headers(admin)


@pytest.mark.parametrize("action", ["enable", "delete", "label"])
def test_bulk_api_with_an_id_past_bigint_is_a_400(client, admin_headers, action):
    key = pool.add_upstream_key(db.session, "AIzaSy-review15-bulk-key-000001", runtime().secret_box).key
    db.session.commit()
    response = client.post("/admin/api/upstream-keys/bulk", headers=admin_headers,
                           json={"action": action, "ids": [key.id, HUGE_ID], "label": "x"})
    assert response.status_code in (200, 400), response.get_data(as_text=True)[:300]


def test_bulk_page_with_an_id_past_bigint_is_not_a_500(client, admin):
    log_in(client, admin.email)
    response = client.post("/admin/keys/bulk", data={"csrf_token": csrf_token(client, "/admin/keys"), "action": "disable",
                                                     "ids": [str(HUGE_ID)]})
    assert response.status_code < 500, response.status_code


def test_pool_page_with_a_huge_page_number_is_not_a_500(client, admin):
    log_in(client, admin.email)
    response = client.get(f"/admin/keys?page={10**20}")
    assert response.status_code < 500, response.status_code


@pytest.mark.parametrize("moment", ["9999-12-31T23:00:00-05:00", "9999-12-31T23:59:59-01:00"])
def test_mint_with_an_expiry_at_the_end_of_time_in_a_western_zone_is_not_a_500(client, admin_headers, moment):
    response = client.post("/admin/api/redemption-codes", headers=admin_headers,
                           json={"amount": "1", "count": 1, "expires_at": moment})
    assert response.status_code in (201, 400), response.get_data(as_text=True)[:300]


@pytest.mark.parametrize("field", ["since", "until"])
@pytest.mark.parametrize("moment", ["9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+01:00"])
def test_audit_filter_at_the_edge_of_time_is_not_a_500(client, admin_headers, field, moment):
    response = client.get("/admin/api/audit", headers=admin_headers, query_string={field: moment})
    assert response.status_code in (200, 400), response.get_data(as_text=True)[:300]
