"""Who may call the proxy: Vault keys checked against the database and cached per process.

Checked keys are cached per process (`KeyCache`), so a call with a known key reads nothing
before its one statement (the hold). That statement returns the `access` stamp, bumped with
every revocation, deactivation or limit change; when it moved, the cache is dropped and the
call is checked again before anything is forwarded (`vault.proxy.forwarding`), so a revoked
key stops at the next call on every worker.
"""

import threading
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from vault.errors import Forbidden, Unauthorized
from vault.models import ApiKey, User
from vault.models.billing_version import ACCESS, stamp_of
from vault.policies.rules import KEY_COLUMNS, NO_POLICY, Policy, effective_policy
from vault.security import hash_vault_key

# Built once: on the hot path a prepared statement skips SQLAlchemy's expression building.
api_keys, users = ApiKey.__table__, User.__table__
KEY_LOOKUP = (
    select(api_keys.c.id, api_keys.c.revoked_at, users.c.id, users.c.is_active,
           stamp_of(ACCESS).label("access_version"), users.c.limits, *(api_keys.c[name] for name in KEY_COLUMNS))
    .join(users, api_keys.c.user_id == users.c.id)
    .where(api_keys.c.key_hash == bindparam("key_hash"))
)

READ_ACCESS_STAMP = select(stamp_of(ACCESS))


@dataclass(frozen=True)
class Caller:
    """Who is calling the proxy: the key's and its owner's ids and the key's effective policy
    (plain values, safe in a stream), and the `access` stamp they were read at."""

    api_key_id: int
    user_id: int
    policy: Policy = NO_POLICY
    access_version: int | None = None

    @property
    def rate_limit_rpm(self) -> int | None:
        """Requests per minute (None: the global default; 0: none)."""
        return self.policy.rate_limit_rpm


class KeyCache:
    """Live Vault keys this process has checked, by hash, good while the `access` stamp stays put.

    Only keys that passed are kept (an unknown key is looked up every time); at most `size`,
    the oldest forgotten first. Every entry was read at the cache's `version`: a newer stamp
    empties it.
    """

    def __init__(self, size: int = 10_000):
        self.size = size
        self._callers: dict[str, Caller] = {}
        self._lock = threading.Lock()
        self.version: int | None = None  # the `access` stamp the entries were read at

    def get(self, key_hash: str) -> Caller | None:
        return self._callers.get(key_hash)

    def put(self, key_hash: str, caller: Caller) -> None:
        """Keep `caller` (a read older than the entries is not kept)."""
        with self._lock:
            if caller.access_version != self.version:
                if not self._newer(caller.access_version):
                    return
                self._callers.clear()
                self.version = caller.access_version
            if len(self._callers) >= self.size:
                self._callers.pop(next(iter(self._callers)))
            self._callers[key_hash] = caller

    def current(self, caller: Caller, stamp: int | None) -> bool:
        """Whether `caller` is still good, given the `access` stamp just read; if not, the cache
        forgets everything read before that stamp."""
        if caller.access_version == stamp:
            return True
        with self._lock:
            if self._newer(stamp):
                self._callers.clear()
                self.version = stamp
        return False

    def _newer(self, stamp: int | None) -> bool:
        return self.version is None or stamp is None or stamp > self.version


def authenticate(session: Session, plaintext: str | None, cache: KeyCache | None = None) -> Caller:
    """The caller owning `plaintext`; 401 if missing, unknown or revoked, 403 if deactivated.

    From `cache` when it has the key; otherwise from the database, then kept in `cache`.
    """
    if not plaintext:
        raise Unauthorized("Missing Vault key: send 'Authorization: Bearer <key>' or 'x-goog-api-key: <key>'.")
    key_hash = hash_vault_key(plaintext)
    cached = cache.get(key_hash) if cache is not None else None
    if cached is not None:
        return cached
    row = session.execute(KEY_LOOKUP, {"key_hash": key_hash}).first()
    if row is None or row[1] is not None:
        raise Unauthorized("Invalid or revoked Vault key.")
    if not row[3]:
        raise Forbidden("This account is deactivated.")
    policy = effective_policy(dict(zip(KEY_COLUMNS, row[6:], strict=True)), row[5])
    caller = Caller(api_key_id=row[0], user_id=row[2], policy=policy, access_version=row[4])
    if cache is not None:
        cache.put(key_hash, caller)
    return caller
