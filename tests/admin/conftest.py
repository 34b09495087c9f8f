"""Fixtures of the admin tests: an admin and their API credentials."""

import pytest


@pytest.fixture
def admin(make_user):
    return make_user(email="root@example.com", is_admin=True)


@pytest.fixture
def admin_headers(admin, auth_headers):
    return auth_headers(admin)
