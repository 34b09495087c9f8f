"""Fifty concurrent claims of one redemption code through a real gunicorn + gevent server (two
worker processes), on SQLite and PostgreSQL: one pays out, 49 are told it is used, the books balance."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.e2e.server import flask_cli

CLAIMS = 50


def balances(stack) -> dict[str, float]:
    users = requests.get(f"{stack.base_url}/admin/api/users", headers=stack.admin(), timeout=10).json()
    return {user["email"]: user["balance_nano_usd"] for user in users}


def sign_up(base: str, email: str) -> dict[str, str]:
    account = {"email": email, "password": "long enough"}
    assert requests.post(f"{base}/auth/users/", json=account, timeout=30).status_code == 201
    token = requests.post(f"{base}/auth/token", json=account, timeout=30).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_fifty_concurrent_claims_pay_out_once(own_stack, backend):
    stack = own_stack(key_count=1, backend=backend, WEB_CONCURRENCY="2", VAULT_REDEEM_PER_HOUR="100")
    base = stack.base_url
    callers = [{"Authorization": f"Bearer {stack.user_token}"}, sign_up(base, "bob@example.com")]
    minted = requests.post(f"{base}/admin/api/redemption-codes", json={"amount": "7.25", "count": 1},
                           headers=stack.admin(), timeout=30)
    assert minted.status_code == 201, minted.text
    code = minted.json()["codes"][0]
    before = balances(stack)
    start = threading.Barrier(CLAIMS)

    def claim(index: int) -> requests.Response:
        with requests.Session() as session:  # a connection of its own per caller
            start.wait()
            return session.post(f"{base}/api/redeem", json={"code": code}, headers=callers[index % 2], timeout=60)

    with ThreadPoolExecutor(CLAIMS) as pool:
        answers = list(pool.map(claim, range(CLAIMS)))

    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] + [409] * (CLAIMS - 1), [answer.text for answer in answers if answer.status_code
                                                     not in (200, 409)]
    assert {answer.json()["error"]["message"] for answer in answers if answer.status_code == 409} == {
        "This redemption code has already been redeemed."}
    winner = next(answer for answer in answers if answer.status_code == 200).json()
    after = balances(stack)
    amount = 7_250_000_000
    assert sum(after.values()) - sum(before.values()) == amount, "paid out exactly once"
    assert winner["balance_nano_usd"] in {before[email] + amount for email in ("ada@example.com", "bob@example.com")}
    listed = requests.get(f"{base}/admin/api/redemption-codes", headers=stack.admin(), timeout=10).json()
    assert [(entry["state"], entry["redeemed_by_email"] in ("ada@example.com", "bob@example.com"))
            for entry in listed["redemption_codes"]] == [("redeemed", True)]
    checked = flask_cli(stack.environ, "billing", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "0 mismatch(es)" in checked.stdout
