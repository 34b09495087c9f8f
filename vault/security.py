"""Cryptography in one place: passwords, Vault keys, access tokens and the upstream-key box.

Nothing here reads Flask state; callers pass the secrets and parameters in.
"""

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vault.clock import utcnow

VAULT_KEY_PREFIX = "gv-"
VAULT_KEY_RANDOM_BYTES = 32
VISIBLE_PREFIX_LENGTH = len(VAULT_KEY_PREFIX) + 8
INVITE_CODE_PREFIX = "gvi-"
INVITE_CODE_RANDOM_BYTES = 24
JWT_ALGORITHM = "HS256"
JWT_LEEWAY_SECONDS = 5

T = TypeVar("T")


def off_hub(func: Callable[..., T], *args) -> T:
    """Run CPU-heavy `func` in gevent's thread pool when gevent is serving, else inline.

    argon2 releases the GIL, so a burst of logins runs beside open streams instead of
    freezing every greenlet of the worker for the length of each hash.
    """
    if gevent_serving():
        from gevent import get_hub

        return get_hub().threadpool.apply(func, args)
    return func(*args)


def gevent_serving() -> bool:
    try:
        from gevent import monkey
    except ImportError:  # pragma: no cover - gevent is a hard dependency
        return False
    return monkey.is_module_patched("socket")


@lru_cache(maxsize=8)
def dummy_hash(time_cost: int, memory_kib: int, parallelism: int) -> str:
    """A hash of a random password with these parameters, verified when an account has none so that a
    missing account costs as much as a wrong password. Made once per process and parameters."""
    hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID)
    return hasher.hash(secrets.token_urlsafe(16))


class PasswordHashing:
    """argon2id hashing with configured cost, run off the gevent hub."""

    def __init__(self, time_cost: int, memory_kib: int, parallelism: int):
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        self._dummy_hash = dummy_hash(time_cost, memory_kib, parallelism)

    def hash(self, password: str) -> str:
        """Hash `password` into an encoded argon2id string."""
        return off_hub(self._hasher.hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        """True when `password_hash` was made with other parameters than today's."""
        return self._hasher.check_needs_rehash(password_hash)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """True if `password` matches; with no hash, spend the same time and return False."""
        try:
            return off_hub(self._hasher.verify, password_hash or self._dummy_hash, password) and (
                password_hash is not None
            )
        except (VerificationError, InvalidHashError):
            return False


@dataclass(frozen=True)
class MintedKey:
    """A freshly minted Vault key; `plaintext` must be shown once and then forgotten."""

    plaintext: str
    prefix: str
    key_hash: str


def mint_vault_key() -> MintedKey:
    """Create a new Vault key: `gv-` followed by 32 random url-safe bytes."""
    plaintext = VAULT_KEY_PREFIX + secrets.token_urlsafe(VAULT_KEY_RANDOM_BYTES)
    return MintedKey(plaintext, plaintext[:VISIBLE_PREFIX_LENGTH], hash_vault_key(plaintext))


def hash_vault_key(plaintext: str) -> str:
    """The SHA-256 hex digest under which a Vault key is stored and looked up."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def mint_invite_code() -> MintedKey:
    """Create a single-use invite code: `gvi-` and 24 random url-safe bytes, stored as its SHA-256."""
    plaintext = INVITE_CODE_PREFIX + secrets.token_urlsafe(INVITE_CODE_RANDOM_BYTES)
    return MintedKey(plaintext, plaintext[:len(INVITE_CODE_PREFIX) + 6], hash_vault_key(plaintext))


class TokenError(ValueError):
    """An access token that is malformed, tampered with, of another kind, or expired."""


def issue_access_token(
    user_id: int, session_version: int, secret: str, ttl_seconds: int, now: datetime | None = None
) -> str:
    """Sign an HS256 access token for the user at their current session version."""
    import jwt  # here, not at the top: PyJWT loads ~2 MB of crypto a proxy-only worker never uses

    issued = now or utcnow()
    claims = {
        "sub": str(user_id),
        "ver": session_version,
        "typ": "access",
        "iat": issued,
        "exp": issued + timedelta(seconds=ttl_seconds),
    }
    return jwt.encode(claims, secret, algorithm=JWT_ALGORITHM)


def read_access_token(token: str, secret: str) -> tuple[int, int]:
    """Verify a token and return `(user_id, session_version)`; raise `TokenError` otherwise."""
    import jwt  # see issue_access_token

    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[JWT_ALGORITHM],
            options={"require": ["exp", "iat", "sub"]},
            leeway=JWT_LEEWAY_SECONDS,
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("token expired") from exc
    except jwt.PyJWTError as exc:
        raise TokenError("invalid token") from exc
    if claims.get("typ") != "access" or not isinstance(claims.get("ver"), int):
        raise TokenError("invalid token")
    try:
        return int(claims["sub"]), claims["ver"]
    except ValueError as exc:
        raise TokenError("invalid token") from exc


class SecretBox:
    """Encrypts upstream keys at rest and fingerprints them for de-duplication.

    `keys` is one or more comma-separated Fernet keys: the first encrypts, all decrypt, so
    an operator rotates by putting a new key first, re-encrypting (`rotate`, run by
    `flask --app wsgi upstream reencrypt`) and dropping the old key.

    Fingerprints are an HMAC under a key derived from `fingerprint_key` -- or, unset, from
    the *last* Fernet key. Rotation adds keys at the front, so the last entry stays the key
    the install started with (a single-key install fingerprints exactly as before this
    rule), and the fingerprints do not move while keys are added. The old key's last duty
    when it is dropped: it goes to `VAULT_FINGERPRINT_KEY` (where it keys fingerprints and
    decrypts nothing). A stored fingerprint made under another listed key (the former
    first-key rule) still matches: `fingerprints()` lists every accepted form.
    """

    def __init__(self, keys: str, fingerprint_key: str | None = None):
        raw_keys = [key.strip() for key in keys.split(",") if key.strip()]
        self._fernet = MultiFernet([Fernet(key) for key in raw_keys])
        primary = fingerprint_hmac_key(fingerprint_key or raw_keys[-1])
        others = [fingerprint_hmac_key(key) for key in raw_keys]
        self._fingerprint_keys = [primary, *[key for key in dict.fromkeys(others) if key != primary]]

    def encrypt(self, secret: str) -> str:
        """Encrypt `secret` into a Fernet token (text)."""
        return self._fernet.encrypt(secret.encode()).decode()

    def decrypt(self, token: str) -> str:
        """Decrypt a token made by `encrypt` under any configured key."""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("upstream key cannot be decrypted with VAULT_ENCRYPTION_KEY") from exc

    def rotate(self, token: str) -> str:
        """The same secret encrypted under the first key (raises `ValueError` if no key decrypts it)."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("upstream key cannot be decrypted with VAULT_ENCRYPTION_KEY") from exc

    def fingerprint(self, secret: str) -> str:
        """The keyed hash stored for `secret`: stable across encryption-key rotation, useless without the key."""
        return self._hmac(self._fingerprint_keys[0], secret)

    def fingerprints(self, secret: str) -> list[str]:
        """Every fingerprint `secret` may be stored under: `fingerprint()` first, then one per listed key."""
        return [self._hmac(key, secret) for key in self._fingerprint_keys]

    @staticmethod
    def _hmac(key: bytes, secret: str) -> str:
        return hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()


def fingerprint_hmac_key(material: str) -> bytes:
    """The HMAC key derived from a Fernet key (its 32 raw bytes, as always) or any other secret text."""
    try:
        raw = base64.urlsafe_b64decode(material.encode())
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raw = material.encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"gemini-vault fingerprint").derive(raw)


def mask_secret(secret: str) -> str:
    """The only text form a secret may take in logs, CLI output and pages."""
    if len(secret) < 12:
        return "…" + "*" * 4
    return f"{secret[:4]}…{secret[-4:]}"


def mask_signing_secret(secret: str) -> str:
    """A shared signing secret (the alert webhook's) as pages, the API and the audit trail show it: its last two
    characters and its length. `mask_secret`'s eight characters would be half of a 16-character secret."""
    return f"…{secret[-2:] if len(secret) >= 16 else ''} ({len(secret)} characters)"
