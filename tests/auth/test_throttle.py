"""The login throttle counts per account *and* address, so nobody can lock another person out."""

import pytest

from tests.conftest import DEFAULT_PASSWORD
from tests.test_pages import csrf_token
from vault.ratelimit import Limiter, LoginThrottle, account_bucket, address_bucket

ATTACKER, OWNER, VICTIM = "203.0.113.66", "198.51.100.7", "victim@example.com"


def token_from(client, address: str, email: str = VICTIM, password: str = "a wrong guess", **headers):
    return client.post("/auth/token", json={"email": email, "password": password}, headers=headers,
                       environ_base={"REMOTE_ADDR": address})


def test_an_attacker_cannot_lock_the_owner_out_from_elsewhere(client, make_user):
    make_user(email=VICTIM)
    for _ in range(5):
        assert token_from(client, ATTACKER).status_code == 401
    refused = token_from(client, ATTACKER, password=DEFAULT_PASSWORD)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert refused.get_json()["error"]["code"] == "rate_limited"
    assert token_from(client, OWNER, password=DEFAULT_PASSWORD).status_code == 200
    assert token_from(client, ATTACKER, password=DEFAULT_PASSWORD).status_code == 429


def test_the_login_page_is_throttled_the_same_way(app, make_user):
    make_user(email=VICTIM)
    attacker, owner = app.test_client(), app.test_client()

    def log_in_from(browser, address, password):
        token = csrf_token(browser, "/login")
        return browser.post("/login", data={"email": VICTIM, "password": password, "csrf_token": token},
                            environ_base={"REMOTE_ADDR": address})

    for _ in range(5):
        assert log_in_from(attacker, ATTACKER, "a wrong guess").status_code == 401
    refused = log_in_from(attacker, ATTACKER, DEFAULT_PASSWORD)
    assert refused.status_code == 429 and b"Too many failed logins" in refused.data
    assert log_in_from(owner, OWNER, DEFAULT_PASSWORD).headers["Location"] == "/dashboard"


def test_behind_a_trusted_proxy_the_forwarded_address_counts(client, make_user):
    make_user(email=VICTIM)
    for _ in range(5):
        assert token_from(client, "127.0.0.1", **{"X-Forwarded-For": ATTACKER}).status_code == 401
    assert token_from(client, "127.0.0.1", password=DEFAULT_PASSWORD, **{"X-Forwarded-For": ATTACKER}).status_code \
        == 429
    assert token_from(client, "127.0.0.1", password=DEFAULT_PASSWORD, **{"X-Forwarded-For": OWNER}).status_code \
        == 200


def test_a_direct_caller_cannot_dodge_the_throttle_with_forwarded_headers(client, make_user):
    make_user(email=VICTIM)
    for n in range(5):
        assert token_from(client, ATTACKER, **{"X-Forwarded-For": f"10.0.0.{n}"}).status_code == 401
    assert token_from(client, ATTACKER, password=DEFAULT_PASSWORD, **{"X-Forwarded-For": "10.9.9.9"}).status_code \
        == 429


def test_one_address_trying_many_accounts_is_throttled(client, make_user):
    for n in range(21):
        make_user(email=f"person{n}@example.com")
    for n in range(20):
        assert token_from(client, ATTACKER, email=f"person{n}@example.com").status_code == 401
    assert token_from(client, ATTACKER, email="person20@example.com", password=DEFAULT_PASSWORD).status_code == 429
    assert token_from(client, OWNER, email="person20@example.com", password=DEFAULT_PASSWORD).status_code == 200


# The throttle on its own (in-process counters): the account-wide cap and address buckets.


@pytest.fixture
def throttle():
    return LoginThrottle(Limiter(None, "test:"), max_failures=5, window_seconds=300)


def test_a_spread_out_attack_reaches_the_account_wide_cap(throttle):
    for n in range(20):
        for _ in range(5):
            throttle.failed(VICTIM, f"192.0.2.{n}")
    assert throttle.retry_after(VICTIM, "198.51.100.200") is not None
    assert throttle.retry_after("someone.else@example.com", "198.51.100.200") is None


def test_below_the_account_wide_cap_fresh_addresses_may_try(throttle):
    for n in range(19):
        for _ in range(5):
            throttle.failed(VICTIM, f"192.0.2.{n}")
    assert throttle.retry_after(VICTIM, "192.0.2.0") is not None
    assert throttle.retry_after(VICTIM, "198.51.100.200") is None


def test_success_forgets_that_address_failures(throttle):
    for _ in range(4):
        throttle.failed(VICTIM, ATTACKER)
    throttle.succeeded(VICTIM, ATTACKER)
    for _ in range(4):
        throttle.failed(VICTIM, ATTACKER)
    assert throttle.retry_after(VICTIM, ATTACKER) is None
    throttle.failed(VICTIM, ATTACKER)
    assert throttle.retry_after(VICTIM, ATTACKER) > 0


def test_emails_count_case_insensitively(throttle):
    for _ in range(5):
        throttle.failed(" Victim@Example.COM", ATTACKER)
    assert throttle.retry_after(VICTIM, ATTACKER) is not None


def test_an_ipv6_subscriber_counts_as_its_whole_slash_64(throttle):
    for n in range(5):
        throttle.failed(VICTIM, f"2001:db8:1:2::{n + 1:x}")
    assert throttle.retry_after(VICTIM, "2001:db8:1:2:ffff::9") is not None
    assert throttle.retry_after(VICTIM, "2001:db8:1:3::1") is None


@pytest.mark.parametrize(("address", "bucket"), [
    ("203.0.113.5", "203.0.113.5"),
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::-64"),
    ("::ffff:203.0.113.5", "203.0.113.5"),
    ("", ""),
    ("x" * 100, "x" * 64),
])
def test_address_buckets(address, bucket):
    assert address_bucket(address) == bucket


def test_account_buckets_hide_the_email():
    assert account_bucket(" Ada@Example.com ") == account_bucket("ada@example.com")
    assert "ada" not in account_bucket("ada@example.com") and len(account_bucket("ada@example.com")) == 32
