"""Redemption codes for admins: the JSON API and the page. Codes are shown once, stored hashed, audited."""

import csv
import io
import re
from datetime import timedelta
from urllib.parse import unquote

import pytest
from jsonschema import Draft202012Validator

from tests.test_pages import csrf_token, log_in
from vault.clock import isoformat, utcnow
from vault.extensions import db
from vault.idempotency import new_token
from vault.models import AuditEntry, RedemptionCode
from vault.openapi import build_openapi
from vault.security import hash_vault_key


def matches_the_document(app, body, schema_name: str) -> None:
    document = build_openapi(app)
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": document["components"]}
    Draft202012Validator(schema).validate(body)
    assert set(body) == set(document["components"]["schemas"][schema_name]["properties"])


def test_mint_shows_the_codes_once_stores_hashes_and_audits(app, client, admin, admin_headers):
    expires = utcnow() + timedelta(days=30)
    response = client.post("/admin/api/redemption-codes", headers=admin_headers,
                           json={"amount": "2.50", "count": 3, "expires_at": isoformat(expires), "note": "workshop"})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    matches_the_document(app, body, "MintedCodes")
    assert (body["count"], body["amount"], body["amount_nano_usd"], body["note"]) == (3, 2.5, 2_500_000_000,
                                                                                      "workshop")
    assert len(set(body["codes"])) == 3 and all(re.fullmatch(r"gvr-[\w-]{27}", code) for code in body["codes"])
    rows = db.session.scalars(db.select(RedemptionCode).order_by(RedemptionCode.id)).all()
    assert {row.code_hash for row in rows} == {hash_vault_key(code) for code in body["codes"]}
    assert {row.batch for row in rows} == {body["batch"]} and {row.created_by for row in rows} == {admin.id}
    entry = db.session.scalars(db.select(AuditEntry).where(AuditEntry.action == "codes.mint")).one()
    assert (entry.actor_id, entry.target, entry.after["count"], entry.after["amount_nano"]) == (
        admin.id, f"batch:{body['batch']}", 3, 2_500_000_000)
    assert not any(code in repr(entry.after) for code in body["codes"])

    listed = client.get("/admin/api/redemption-codes", headers=admin_headers)
    assert listed.status_code == 200
    text = listed.get_data(as_text=True)
    assert not any(code in text for code in body["codes"])
    page = listed.get_json()
    matches_the_document(app, page, "RedemptionCodePage")
    assert (page["total"], page["page"], page["per_page"]) == (3, 1, 50)
    assert {entry["state"] for entry in page["redemption_codes"]} == {"unused"}
    for entry in page["redemption_codes"]:
        matches_the_document(app, entry, "RedemptionCode")


def test_the_list_filters_by_state_batch_and_pages(client, admin_headers, make_user, auth_headers):
    first = client.post("/admin/api/redemption-codes", json={"amount": 1, "count": 3}, headers=admin_headers)
    second = client.post("/admin/api/redemption-codes", json={"amount": 1, "count": 2}, headers=admin_headers)
    ada = make_user(email="ada@example.com")
    assert client.post("/api/redeem", json={"code": first.get_json()["codes"][0]},
                       headers=auth_headers(ada)).status_code == 200

    def listed(query: str) -> dict:
        response = client.get(f"/admin/api/redemption-codes?{query}", headers=admin_headers)
        assert response.status_code == 200
        return response.get_json()

    redeemed = listed("state=redeemed")
    assert redeemed["total"] == 1
    assert (redeemed["redemption_codes"][0]["redeemed_by"], redeemed["redemption_codes"][0]["redeemed_by_email"]) == (
        ada.id, "ada@example.com")
    assert listed("state=unused")["total"] == 4 and listed("state=expired")["total"] == 0
    assert listed(f"batch={second.get_json()['batch']}")["total"] == 2
    paged = listed("per_page=2&page=3")
    assert paged["total"] == 5 and len(paged["redemption_codes"]) == 1


@pytest.mark.parametrize(("body", "field"), [
    ({"count": 1}, "amount"),
    ({"amount": 0, "count": 1}, "amount"),
    ({"amount": -5, "count": 1}, "amount"),
    ({"amount": "lots", "count": 1}, "amount"),
    ({"amount": "1e7", "count": 1}, "amount"),
    ({"amount": "0.0000000001", "count": 1}, "amount"),
    ({"amount": 1}, "count"),
    ({"amount": 1, "count": 0}, "count"),
    ({"amount": 1, "count": 1001}, "count"),
    ({"amount": 1, "count": "3"}, "count"),
    ({"amount": 1, "count": True}, "count"),
    ({"amount": 1, "count": 1, "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
    ({"amount": 1, "count": 1, "expires_at": "soon"}, "expires_at"),
    ({"amount": 1, "count": 1, "note": "n" * 256}, "note"),
    ({"amount": 1, "count": 1, "expires": "2030-01-01T00:00:00Z"}, "expires"),
])
def test_bad_batches_are_refused(client, admin_headers, db_snapshot, body, field):
    before = db_snapshot()
    response = client.post("/admin/api/redemption-codes", json=body, headers=admin_headers)
    assert response.status_code == 400 and field in response.get_json()["error"]["fields"]
    assert db_snapshot() == before


@pytest.mark.parametrize("query", ["state=spent", "page=0", "per_page=501", "page=x"])
def test_bad_list_queries_are_refused(client, admin_headers, query):
    response = client.get(f"/admin/api/redemption-codes?{query}", headers=admin_headers)
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "validation_error"


def test_a_body_that_is_not_json_is_refused(client, admin_headers, db_snapshot):
    before = db_snapshot()
    assert client.post("/admin/api/redemption-codes", data="amount=1", headers=admin_headers).status_code == 415
    assert client.post("/admin/api/redemption-codes", data="{", headers=admin_headers,
                       content_type="application/json").status_code == 400
    assert db_snapshot() == before


@pytest.mark.parametrize("method", ["get", "post"])
def test_codes_are_for_admins_only(client, make_user, auth_headers, db_snapshot, method):
    headers = auth_headers(make_user())
    before = db_snapshot()
    body = {"amount": 1, "count": 1}
    assert getattr(client, method)("/admin/api/redemption-codes", json=body).status_code == 401
    assert getattr(client, method)("/admin/api/redemption-codes", json=body, headers=headers).status_code == 403
    assert db_snapshot() == before


def test_a_session_needs_a_csrf_header_to_mint(app, admin, db_snapshot):
    browser = app.test_client()
    log_in(browser, "root@example.com")
    before = db_snapshot()
    refused = browser.post("/admin/api/redemption-codes", json={"amount": 1, "count": 1})
    assert refused.status_code == 400 and db_snapshot() == before
    token = csrf_token(browser, "/admin/redemption-codes")
    minted = browser.post("/admin/api/redemption-codes", json={"amount": 1, "count": 1},
                          headers={"X-CSRFToken": token})
    assert minted.status_code == 201


# The page


def read_csv_link(html: str) -> list[dict]:
    href = re.search(r'href="data:text/csv;charset=utf-8,([^"]+)" download="redemption-codes-\w+\.csv"', html)
    return list(csv.DictReader(io.StringIO(unquote(href.group(1)))))


def test_the_page_mints_shows_once_and_lists(app, admin, make_user, db_snapshot):
    browser = app.test_client()
    log_in(browser, "root@example.com")
    page = browser.get("/admin/redemption-codes")
    assert page.status_code == 200 and b"No codes yet" in page.data
    assert b'href="/admin/redemption-codes"' in page.data  # in the admin navigation
    token = csrf_token(browser, "/admin/redemption-codes")
    before = db_snapshot()
    for bad in ({"amount": "0", "count": "1"}, {"amount": "1", "count": "1001"}, {"amount": "x", "count": "1"},
                {"amount": "1", "count": "1", "expires_in_days": "0"}, {"amount": "0.0000000001", "count": "1"}):
        refused = browser.post("/admin/redemption-codes", data=bad | {"csrf_token": token, "form_token": new_token()})
        assert refused.status_code == 400 and b'aria-invalid="true"' in refused.data
    assert db_snapshot() == before

    created = browser.post("/admin/redemption-codes", data={"amount": "3", "count": "4", "expires_in_days": "30",
                                                            "note": "=cmd|<b>x</b>", "csrf_token": token,
                                                            "form_token": new_token()})
    assert created.status_code == 201
    html = created.get_data(as_text=True)
    shown = re.search(r'data-testid="new-codes-list">([^<]*)</textarea>', html).group(1).split()
    assert len(shown) == 4
    rows = read_csv_link(html)
    assert [row["code"] for row in rows] == shown
    assert {(row["amount_usd"], row["note"]) for row in rows} == {("3", "'=cmd|<b>x</b>")}
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    stored = db.session.scalars(db.select(RedemptionCode)).all()
    assert {row.code_hash for row in stored} == {hash_vault_key(code) for code in shown}
    assert all(timedelta(days=29, hours=23) < row.expires_at - row.created_at <= timedelta(days=30, seconds=5)
               for row in stored)
    assert db.session.scalars(db.select(AuditEntry.action)).all() == ["codes.mint"]

    again = browser.get("/admin/redemption-codes").get_data(as_text=True)
    assert not any(code in again for code in shown) and "data:text/csv" not in again
    assert all(row.prefix in again for row in stored) and "unused" in again
    assert browser.get("/admin/redemption-codes?state=redeemed").data.count(b"No codes match") == 1
    assert browser.get("/admin/redemption-codes?state=nonsense&page=-3").status_code == 200


def test_page_posts_need_csrf_and_an_admin(app, admin, make_user, db_snapshot):
    browser = app.test_client()
    log_in(browser, "root@example.com")
    before = db_snapshot()
    response = browser.post("/admin/redemption-codes", data={"amount": "1", "count": "1"})
    assert response.status_code == 400 and b"CSRF" in response.data
    make_user(email="ada@example.com")
    before = db_snapshot()
    other = app.test_client()
    log_in(other, "ada@example.com")
    assert other.get("/admin/redemption-codes").status_code == 403
    token = csrf_token(other, "/dashboard")
    refused = other.post("/admin/redemption-codes", data={"amount": "1", "count": "1", "csrf_token": token,
                                                          "form_token": new_token()})
    assert refused.status_code == 403
    assert db_snapshot() == before
    assert app.test_client().get("/admin/redemption-codes").status_code == 302  # to the login page


def test_the_mint_form_sent_twice_mints_once_and_needs_its_token(app, admin):
    browser = app.test_client()
    log_in(browser, "root@example.com")
    token = csrf_token(browser, "/admin/redemption-codes")
    without = browser.post("/admin/redemption-codes", data={"amount": "1", "count": "2", "csrf_token": token})
    assert without.status_code == 400 and db.session.scalars(db.select(RedemptionCode)).all() == []
    form = {"amount": "1", "count": "2", "csrf_token": token, "form_token": new_token()}
    assert browser.post("/admin/redemption-codes", data=form).status_code == 201
    again = browser.post("/admin/redemption-codes", data=form)
    assert again.status_code in (302, 303)
    assert len(db.session.scalars(db.select(RedemptionCode)).all()) == 2  # one batch of two, not two batches
