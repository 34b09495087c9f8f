"""The per-image price: the catalog's Imagen models, the admin price API and the prices page."""

import pytest

from vault.billing import catalog
from vault.extensions import db
from vault.models import ModelPrice
from vault.runtime import runtime

BODY = {"input": 0, "output": 0}


def test_the_api_takes_and_shows_an_image_price(client, admin_headers):
    saved = client.put("/admin/api/prices/imagen-4.0-generate-001", json=BODY | {"image": "0.04"},
                       headers=admin_headers)
    assert saved.status_code == 200 and saved.get_json()["image"] == 0.04
    assert runtime().prices.lookup("imagen-4.0-generate-001").image == 40_000_000
    listed = client.get("/admin/api/prices", headers=admin_headers).get_json()["prices"]
    assert [(p["model"], p["image"]) for p in listed] == [("imagen-4.0-generate-001", 0.04)]
    replaced = client.put("/admin/api/prices/imagen-4.0-generate-001", json=BODY, headers=admin_headers)
    assert replaced.get_json()["image"] is None  # a PUT replaces every price: no image price, no images
    assert runtime().prices.lookup("imagen-4.0-generate-001").image is None


@pytest.mark.parametrize("image", [-0.01, "x", 1_000_000, "0.0000000001", True])
def test_a_bad_image_price_is_refused_and_changes_nothing(client, admin_headers, db_snapshot, image):
    before = db_snapshot()
    response = client.put("/admin/api/prices/imagen-x", json=BODY | {"image": image}, headers=admin_headers)
    assert response.status_code == 400 and "image" in response.get_json()["error"]["fields"]
    assert db_snapshot() == before


def test_the_catalog_prices_imagen_per_image(app):
    catalog.seed_prices(db.session)
    db.session.commit()
    images = {row.model: row.image_nano for row in db.session.scalars(db.select(ModelPrice))
              if row.image_nano is not None}
    assert images == {"imagen-4.0-generate-001": 40_000_000, "imagen-4.0-ultra-generate-001": 60_000_000,
                      "imagen-4.0-fast-generate-001": 20_000_000, "imagen-3.0-generate-002": 30_000_000}
    assert db.session.get(ModelPrice, "gemini-2.5-flash").image_nano is None


def test_the_prices_page_takes_and_shows_an_image_price(app, make_user):
    from tests.test_pages import csrf_token, log_in
    make_user(email="root@example.com", is_admin=True)
    browser = app.test_client()
    log_in(browser, "root@example.com")
    token = csrf_token(browser, "/admin/prices")
    refused = browser.post("/admin/prices", data={"model": "imagen-z", "input": "0", "output": "0", "image": "-1",
                                                  "csrf_token": token})
    assert refused.status_code == 400
    browser.post("/admin/prices", data={"model": "imagen-z", "input": "0", "output": "0", "image": "0.06",
                                        "csrf_token": token})
    assert db.session.get(ModelPrice, "imagen-z").image_nano == 60_000_000
    assert "$0.06 / image" in browser.get("/admin/prices").get_data(as_text=True)
