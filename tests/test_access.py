"""The per-worker cache of checked Vault keys: bounded, and never keeps what an older read saw."""

import pytest

from vault import create_app
from vault.access import Caller, KeyCache
from vault.config import ConfigError


def caller(key_id: int, version: int | None) -> Caller:
    return Caller(api_key_id=key_id, user_id=1, access_version=version)


def test_the_cache_keeps_at_most_its_size_oldest_out_first():
    cache = KeyCache(size=2)
    for key_id in (1, 2, 3):
        cache.put(f"hash{key_id}", caller(key_id, 5))
    assert cache.get("hash1") is None and cache.get("hash2").api_key_id == 2 and cache.get("hash3").api_key_id == 3


def test_a_newer_stamp_empties_the_cache_and_an_older_read_is_not_kept():
    cache = KeyCache()
    cache.put("a", caller(1, 5))
    assert cache.current(cache.get("a"), 5)
    assert not cache.current(cache.get("a"), 6)  # revoked somewhere: everything read before goes
    assert cache.get("a") is None and cache.version == 6
    cache.put("b", caller(2, 5))  # read before the change, stored after it: not kept
    assert cache.get("b") is None
    cache.put("c", caller(3, 6))
    assert cache.get("c").api_key_id == 3


def test_a_call_checked_at_an_older_stamp_is_stale_even_after_another_refreshed_the_cache():
    cache = KeyCache()
    old = caller(1, 5)
    cache.put("a", old)
    cache.put("a", caller(1, 6))  # another call refreshed meanwhile
    assert not cache.current(old, 6) and cache.current(cache.get("a"), 6)


@pytest.mark.parametrize("setting", [{"VAULT_SETTLE_DELAY_MS": "-1"}, {"VAULT_KEY_CACHE_SIZE": "0"}])
def test_nonsense_cache_and_batch_settings_stop_the_start(tmp_path, setting):
    with pytest.raises(ConfigError):
        create_app({"VAULT_INSTANCE_PATH": str(tmp_path)}, environ=setting)


def test_the_settings_reach_the_runtime(tmp_path):
    app = create_app({"VAULT_INSTANCE_PATH": str(tmp_path), "VAULT_BOOTSTRAP": False},
                     environ={"VAULT_SETTLE_DELAY_MS": "35", "VAULT_KEY_CACHE_SIZE": "7",
                              "DATABASE_URL": f"sqlite:///{tmp_path / 'v.sqlite3'}"})
    vault = app.extensions["vault"]
    assert vault.books.settlements.delay == 0.035 and vault.keys.size == 7
