"""Fixtures of the dashboard tests: an admin's API credentials, for the limits only admins set."""

import pytest


@pytest.fixture
def admin_headers(make_user, auth_headers):
    return auth_headers(make_user(email="root@example.com", is_admin=True))
