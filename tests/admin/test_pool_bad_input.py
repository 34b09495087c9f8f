"""Bad input to the pool's bulk actions and page: a key id past the INTEGER column (PostgreSQL's DataError, a
false 503) or past BIGINT (SQLite's OverflowError, a 500), a page number past any offset -- a 400 (or the first
page), never a 5xx."""

import pytest

from tests.test_pages import csrf_token, log_in
from vault import pool
from vault.extensions import db
from vault.inbound import INTEGER_MAX
from vault.runtime import runtime

HUGE_ID = 10**20  # past every database's BIGINT


def pooled_key() -> int:
    key = pool.add_upstream_key(db.session, "AIzaSy-bad-input-bulk-key-000001", runtime().secret_box).key
    db.session.commit()
    return key.id


@pytest.mark.parametrize("action", ["enable", "delete", "label"])
@pytest.mark.parametrize("bad_id", [HUGE_ID, 2**63, INTEGER_MAX + 1, 0, -1])
def test_bulk_api_with_an_id_out_of_range_is_a_400(client, admin_headers, action, bad_id):
    key_id = pooled_key()
    response = client.post("/admin/api/upstream-keys/bulk", headers=admin_headers,
                           json={"action": action, "ids": [key_id, bad_id], "label": "x"})
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert "ids" in response.get_data(as_text=True)
    assert pool.find_upstream_key(db.session, key_id).label == "", "nothing changed"


def test_bulk_api_takes_the_largest_id_as_a_missing_key(client, admin_headers):
    key_id = pooled_key()
    response = client.post("/admin/api/upstream-keys/bulk", headers=admin_headers,
                           json={"action": "label", "ids": [key_id, INTEGER_MAX], "label": "x"})
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert (response.get_json()["changed"], response.get_json()["missing"]) == ([key_id], [INTEGER_MAX])


@pytest.mark.parametrize("bad_id", [str(HUGE_ID), str(INTEGER_MAX + 1), "0", "-3"])
def test_bulk_page_with_an_id_out_of_range_is_a_400(client, admin, bad_id):
    log_in(client, admin.email)
    token = csrf_token(client, "/admin/keys")
    response = client.post("/admin/keys/bulk", data={"csrf_token": token, "action": "disable", "ids": [bad_id]})
    assert response.status_code == 400, response.status_code
    assert "Not a key id" in response.get_data(as_text=True)


@pytest.mark.parametrize("page", [str(10**20), str(2**63), "1000001", "²", "-2"])
def test_pool_page_with_a_page_number_past_any_offset_shows_the_first_page(client, admin, page):
    log_in(client, admin.email)
    key_id = pooled_key()
    response = client.get("/admin/keys", query_string={"page": page, "per_page": "500"})
    assert response.status_code == 200, response.status_code
    assert f'name="ids" value="{key_id}"' in response.get_data(as_text=True)


def test_pool_page_past_the_last_page_is_empty(client, admin):
    log_in(client, admin.email)
    pooled_key()
    response = client.get("/admin/keys", query_string={"page": "1000000"})
    assert response.status_code == 200 and 'name="ids" value=' not in response.get_data(as_text=True)
