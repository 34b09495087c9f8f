"""Passwords, Vault keys, access tokens, the secret box and masking."""

import re

import pytest

from tests.conftest import TEST_ENCRYPTION_KEY
from vault.security import (
    PasswordHashing,
    SecretBox,
    TokenError,
    hash_vault_key,
    issue_access_token,
    mask_secret,
    mint_invite_code,
    mint_vault_key,
    read_access_token,
)


@pytest.fixture(scope="module")
def passwords():
    return PasswordHashing(time_cost=2, memory_kib=19456, parallelism=1)


def test_argon2id_round_trip(passwords):
    encoded = passwords.hash("correct horse")
    assert encoded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert passwords.verify(encoded, "correct horse")
    assert not passwords.verify(encoded, "wrong horse")
    assert not passwords.verify(None, "correct horse")
    assert not passwords.verify("not a hash", "correct horse")


def test_stronger_parameters_ask_for_a_rehash(passwords):
    stronger = PasswordHashing(time_cost=3, memory_kib=19456, parallelism=1)
    assert stronger.needs_rehash(passwords.hash("pw-pw-pw-pw"))


def test_vault_keys_are_long_random_and_hashed():
    keys = {mint_vault_key() for _ in range(50)}
    assert len({key.plaintext for key in keys}) == 50
    for key in keys:
        assert re.fullmatch(r"gv-[A-Za-z0-9_-]{43}", key.plaintext)
        assert key.prefix == key.plaintext[:11]
        assert key.key_hash == hash_vault_key(key.plaintext) and len(key.key_hash) == 64


def test_invite_codes_are_long_random_and_hashed():
    codes = {mint_invite_code() for _ in range(50)}
    assert len({code.plaintext for code in codes}) == 50
    for code in codes:
        assert re.fullmatch(r"gvi-[A-Za-z0-9_-]{32}", code.plaintext)
        assert code.prefix == code.plaintext[:10] and code.key_hash == hash_vault_key(code.plaintext)


def test_access_tokens_round_trip_and_reject_forgeries():
    token = issue_access_token(7, 3, "k" * 40, 60)
    assert read_access_token(token, "k" * 40) == (7, 3)
    with pytest.raises(TokenError):
        read_access_token(token, "other" * 10)
    with pytest.raises(TokenError):
        read_access_token(token + "x", "k" * 40)


def test_secret_box_encrypts_and_fingerprints():
    box = SecretBox(TEST_ENCRYPTION_KEY)
    token = box.encrypt("AIzaSyExample-secret-1234")
    assert "AIzaSyExample" not in token and box.decrypt(token) == "AIzaSyExample-secret-1234"
    assert box.encrypt("same") != box.encrypt("same")
    assert box.fingerprint("same") == box.fingerprint("same") != box.fingerprint("other")
    with pytest.raises(ValueError, match="VAULT_ENCRYPTION_KEY"):
        box.decrypt("garbage")


@pytest.mark.parametrize(("secret", "masked"), [
    ("AIzaSyExample-secret-1234", "AIza…1234"),
    ("shortkey", "…****"),
])
def test_mask_secret(secret, masked):
    assert mask_secret(secret) == masked
