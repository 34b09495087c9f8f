"""Through the proxy: each request is settled under an id the server made, whatever X-Request-Id says."""


import pytest

from tests.billing.books import assert_books_balance, balance_of, records

GENERATE = "/v1beta/models/gemini-2.5-flash:generateContent"
PROMPT = {"contents": [{"role": "user", "parts": [{"text": "Say hi"}]}]}


@pytest.fixture
def vault_key(proxied_key):
    """A Vault key of a user with $1 of recorded credit, in front of the fake upstream."""
    return proxied_key("1.00").plaintext


@pytest.mark.parametrize("request_id", ["client-fixed-id-0001", "3f0c9a4e-8b1d-4c2f-9e7a-5d6b1a2c3e4f", "r" * 64])
def test_a_reused_or_long_request_id_never_makes_a_request_free(client, vault_key, request_id):
    for _ in range(3):
        response = client.post(GENERATE, json=PROMPT, headers={"x-goog-api-key": vault_key,
                                                               "X-Request-Id": request_id})
        assert response.status_code == 200 and response.headers["X-Request-Id"] == request_id
        response.close()
    found = records()
    assert len(found) == 3 and len({record.settlement_id for record in found}) == 3
    assert {record.client_request_id for record in found} == {request_id}
    assert all(record.cost_nano > 0 for record in found)
    user_id = found[0].user_id
    assert balance_of(user_id) == 10**9 - sum(record.cost_nano for record in found)
    assert_books_balance(user_id)


def test_an_insane_request_id_is_replaced_and_still_traced(client, vault_key):
    response = client.post(GENERATE, json=PROMPT, headers={"x-goog-api-key": vault_key, "X-Request-Id": "x" * 65})
    response.close()
    (record,) = records()
    assert record.client_request_id == response.headers["X-Request-Id"] != "x" * 65
    assert record.settlement_id != record.client_request_id
