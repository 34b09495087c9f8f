"""Fixtures of the policy tests."""

import pytest


@pytest.fixture
def key(proxied_key):
    """A Vault key (`NewApiKey`) of a user with $1 of recorded credit, in front of the fake."""
    return proxied_key("1.00")
