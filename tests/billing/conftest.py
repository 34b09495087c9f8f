"""Fixtures of the ledger tests: users whose starting credit is in the ledger."""

from collections.abc import Callable

import pytest

from vault.billing import balances
from vault.extensions import db


@pytest.fixture
def account(make_user) -> Callable[..., int]:
    """`account(balance="1.00", **fields)`: a user whose balance is recorded as signup credit; their id."""

    def build(balance: str = "1.00", **fields) -> int:
        user = make_user(balance=balance, **fields)
        balances.record_signup_credit(db.session, user)
        db.session.commit()
        return user.id

    return build
