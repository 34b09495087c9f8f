"""The upstream key pool: which Gemini keys exist, and what decides each key's fate.

A key's fate is decided in one place, in this order of reading:

1. `classify` -- what one upstream answer means for the key that got it (a `Verdict`):
   only Google's own words about the key (`ErrorInfo.reason`, `error.status`, a known
   message) take a key out; anything about the request is the caller's error.
2. `rotator` -- `KeyRotator`, the in-memory rules: round-robin, per-model cooldowns after
   429s, the short circuit breaker after repeated 5xx/timeouts, timed and permanent disables.
3. `shared` -- `SharedKeyRotator`, the same rules with their state in Redis, so every
   worker on every host agrees; Redis is a cache of the database, reconciled at each refresh.
4. `health` -- `PoolHealth`, which turns each verdict into rotator calls and writes every
   change of health to the database (the durable copy all workers re-read).
5. `store` -- the stored keys themselves: add, list, find, enable/disable, set a proxy and (soft) delete
   by an admin; `egress` checks a key's proxy URL and masks it for display.
6. `encryption` -- re-encrypting the stored keys when `VAULT_ENCRYPTION_KEY` rotates, and the
   guard that keeps their fingerprints (de-duplication) meaningful across it.

The per-request rules (fail over before the first byte, at most one key blamed per
request, a redirect is never followed) live in the failover loop, `vault.upstream.failover`.

`from vault import pool` gives the stored pool (the functions views and CLI commands call);
the machinery is imported from its submodule.
"""

from vault.pool.store import (
    AddedKey,
    add_upstream_key,
    add_upstream_keys,
    count_by_state,
    delete_upstream_key,
    find_upstream_key,
    list_upstream_keys,
    masked_proxy,
    set_upstream_key_proxy,
    set_upstream_key_state,
)

__all__ = [
    "AddedKey",
    "add_upstream_key",
    "add_upstream_keys",
    "count_by_state",
    "delete_upstream_key",
    "find_upstream_key",
    "list_upstream_keys",
    "masked_proxy",
    "set_upstream_key_proxy",
    "set_upstream_key_state",
]
