"""Pool search: SQL wildcards in `q` are matched as text on both databases."""

import pytest

from vault import pool
from vault.extensions import db
from vault.models import UpstreamKey
from vault.runtime import runtime


def add_key(secret: str, label: str = "") -> UpstreamKey:
    key = pool.add_upstream_key(db.session, secret, runtime().secret_box).key
    key.label = label
    db.session.commit()
    return key


@pytest.mark.parametrize("q, expected", [("%", ["100%"]), ("_", ["a_b"]), ("\\", ["back\\slash"])])
def test_search_treats_sql_wildcards_as_text(client, admin_headers, q, expected):
    for number, label in enumerate(["100%", "a_b", "back\\slash", "plain"]):
        add_key(f"AIzaSy-review15-search-key-{number:05d}", label)
    found = client.get("/admin/api/upstream-keys", headers=admin_headers, query_string={"q": q})
    assert found.status_code == 200
    assert [key["label"] for key in found.get_json()["upstream_keys"]] == expected
