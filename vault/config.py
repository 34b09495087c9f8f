"""Every setting Gemini-Vault reads: its environment variable, type and default.

`settings_from_env()` turns the process environment into Flask config keys (the same names
as the variables); `finalize()` fills the generated development secrets and refuses a
production start that lacks real ones.
"""

import ipaddress
import os
import secrets
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography.fernet import Fernet

from vault.billing.money import usd_to_nano

DEFAULT_GEMINI_BASE_URL = "https://generativelanguage.googleapis.com"
PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "secret", "dev", "development", "test"}
MIN_SECRET_KEY_LENGTH = 32
REGISTRATION_MODES = ("open", "invite", "closed")


class ConfigError(RuntimeError):
    """The configuration cannot be used; the message says which variable and why."""


def parse_bool(raw: str) -> bool:
    """Read `1/true/yes/on` and `0/false/no/off`, case-insensitively."""
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {raw!r}")


def parse_list(raw: str) -> tuple[str, ...]:
    """Split a comma- or newline-separated list, dropping blanks."""
    return tuple(item.strip() for item in raw.replace("\n", ",").split(",") if item.strip())


def parse_registration(raw: str) -> str:
    """`open`, `invite` or `closed`: who may create an account."""
    mode = raw.strip().lower()
    if mode not in REGISTRATION_MODES:
        raise ValueError(f"must be one of {', '.join(REGISTRATION_MODES)}, not {raw!r}")
    return mode


def parse_trusted_proxies(raw: str) -> tuple[str, ...]:
    """Addresses and networks (CIDR) of trusted reverse proxies, or `*` for any peer."""
    entries = parse_list(raw)
    for entry in entries:
        if entry != "*":
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"not an IP address or network: {entry!r}") from None
    return entries


def parse_zone(raw: str) -> ZoneInfo:
    """An IANA time zone name (`UTC`, `Europe/Berlin`)."""
    try:
        return ZoneInfo(raw.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{raw!r} is not an IANA time zone name") from None


def parse_usd(raw: str) -> int:
    """Parse a USD amount such as `1.00` into nano-USD."""
    try:
        return usd_to_nano(Decimal(raw.strip()))
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {raw!r}") from exc


@dataclass(frozen=True)
class Setting:
    """One environment variable: how to parse it and what it defaults to."""

    name: str
    parse: Callable[[str], Any]
    default: Any
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("VAULT_ENV", str, "development", "`production` enforces real secrets"),
    Setting("SECRET_KEY", str, None, "signs sessions and tokens"),
    Setting("VAULT_ENCRYPTION_KEY", str, None, "Fernet key(s) encrypting upstream keys"),
    Setting("VAULT_FINGERPRINT_KEY", str, None,
            "keys the upstream-key fingerprints (de-duplication); default: the last VAULT_ENCRYPTION_KEY entry"),
    Setting("DATABASE_URL", str, None, "SQLAlchemy URL; default SQLite in the instance folder"),
    Setting("REDIS_URL", str, None, "optional shared state across workers and hosts"),
    Setting("VAULT_REDIS_PREFIX", str, "vault:", "prefix of every Redis key (several Vaults can share one Redis)"),
    Setting("VAULT_REDIS_TIMEOUT_SECONDS", float, 0.25, "a Redis call slower than this counts as Redis down"),
    Setting("VAULT_REDIS_RETRY_SECONDS", float, 5.0,
            "while Redis is down, workers use local state and probe it this often (in the background)"),
    Setting("VAULT_RATE_LIMIT_RPM", int, 0, "requests per minute per Vault key unless set on the key; 0 = none"),
    Setting("VAULT_SPEND_CAP_TIMEZONE", parse_zone, ZoneInfo("UTC"),
            "time zone in which daily, weekly (from Monday) and monthly key spend caps reset"),
    Setting("GEMINI_BASE_URL", str, DEFAULT_GEMINI_BASE_URL, "upstream base URL"),
    Setting("GEMINI_API_KEYS", parse_list, (), "upstream keys added to the pool at start"),
    Setting("VAULT_ADMIN_EMAIL", str, None, "bootstrap admin created at start if absent"),
    Setting("VAULT_ADMIN_PASSWORD", str, None, "password of the bootstrap admin"),
    Setting("VAULT_DEFAULT_BALANCE", parse_usd, parse_usd("1.00"), "credit for new users"),
    Setting("VAULT_REGISTRATION", parse_registration, "open", "who may sign up: open, invite or closed"),
    Setting("VAULT_SIGNUP_PER_HOUR", int, 10, "sign-up attempts per client address per hour; 0 = no limit"),
    Setting("VAULT_REDEEM_PER_HOUR", int, 20,
            "redemption-code attempts per user per hour (x4 per client address); 0 = no limit"),
    Setting("VAULT_INSTANCE_PATH", str, None, "folder for the SQLite file and dev secrets"),
    Setting("VAULT_TOKEN_TTL_SECONDS", int, 3600, "lifetime of a JWT from /auth/token"),
    Setting("VAULT_LOGIN_MAX_FAILURES", int, 5, "failed logins per account before a wait"),
    Setting("VAULT_LOGIN_WINDOW_SECONDS", float, 300.0, "window (and wait) of the login throttle"),
    Setting("VAULT_PUBLIC_URL", str, None, "base URL shown in quick-start snippets; default: the request's"),
    Setting("VAULT_MAX_BODY_BYTES", int, 20 * 1024 * 1024, "largest request body accepted"),
    Setting("VAULT_BODY_TIMEOUT_SECONDS", float, 60.0, "a request body must arrive within this (408 otherwise)"),
    Setting("VAULT_METRICS_TOKEN", str, None, "if set, /metrics requires 'Authorization: Bearer <token>'"),
    Setting("VAULT_COOKIE_SECURE", parse_bool, None, "Secure flag on cookies; default on in production"),
    Setting("FORWARDED_ALLOW_IPS", parse_trusted_proxies, ("127.0.0.1",),
            "reverse proxies whose X-Forwarded-For is believed (IPs, CIDRs or *), as in gunicorn"),
    Setting("VAULT_PROXY_HOPS", int, 1, "trusted proxies in front of the Vault that append to X-Forwarded-For"),
    Setting("VAULT_ARGON2_TIME_COST", int, 2, "argon2id iterations (OWASP minimum 2)"),
    Setting("VAULT_ARGON2_MEMORY_KIB", int, 19456, "argon2id memory in KiB (OWASP minimum 19456)"),
    Setting("VAULT_ARGON2_PARALLELISM", int, 1, "argon2id lanes"),
    Setting("VAULT_DB_POOL_SIZE", int, 20, "database connections kept per worker (not SQLite)"),
    Setting("VAULT_DB_MAX_OVERFLOW", int, 10, "extra connections allowed under bursts (opened and closed each time)"),
    Setting("VAULT_BOOTSTRAP", parse_bool, True, "apply admin and key variables at start"),
    Setting("VAULT_UPSTREAM_CONNECT_TIMEOUT", float, 5.0, "seconds to connect to the upstream"),
    Setting("VAULT_UPSTREAM_READ_TIMEOUT", float, 120.0, "seconds of upstream silence before giving up"),
    Setting("VAULT_UPSTREAM_MAX_RETRIES", int, 3, "other keys tried after a key-attributable failure"),
    Setting("VAULT_UPSTREAM_POOL_SIZE", int, 1000, "pooled upstream connections per worker"),
    Setting("VAULT_COOLDOWN_BASE_SECONDS", float, 5.0, "first cooldown after a 429 without a retry hint"),
    Setting("VAULT_COOLDOWN_MAX_SECONDS", float, 600.0, "longest exponential cooldown"),
    Setting("VAULT_KEY_MAX_FAILURES", int, 5, "consecutive key failures before a key is disabled"),
    Setting("VAULT_KEY_DISABLE_SECONDS", float, 3600.0, "how long such a key stays disabled"),
    Setting("VAULT_KEY_BREAKER_FAILURES", int, 3, "5xx/timeouts in a row that set a key aside (0 = off)"),
    Setting("VAULT_KEY_BREAKER_SECONDS", float, 30.0, "how long a key is set aside by its breaker"),
    Setting("VAULT_POOL_REFRESH_SECONDS", float, 5.0, "how often a worker re-reads the pool table"),
    Setting("VAULT_KEY_CHECK_CONCURRENCY", int, 8, "upstream calls at once of a pool check job (Check all)"),
    Setting("VAULT_RETRY_AFTER_MAX_SECONDS", float, 3600.0,
            "longest Retry-After when every key is cooling (a per-day quota would say up to a day)"),
    Setting("VAULT_PRICE_REFRESH_SECONDS", float, 30.0, "how often a worker re-reads the price table"),
    Setting("VAULT_FALLBACK_INPUT_PRICE", parse_usd, parse_usd("1.25"), "USD/1M input tokens, unknown models"),
    Setting("VAULT_FALLBACK_OUTPUT_PRICE", parse_usd, parse_usd("10.00"), "USD/1M output tokens, unknown models"),
    Setting("VAULT_FALLBACK_CACHED_PRICE", parse_usd, parse_usd("0.125"), "USD/1M cached tokens, unknown models"),
    Setting("VAULT_FALLBACK_TIER_THRESHOLD", int, 200_000,
            "unknown models: prompts longer than this (tokens) pay the *_ABOVE prices; 0 = no tier"),
    Setting("VAULT_FALLBACK_INPUT_PRICE_ABOVE", parse_usd, parse_usd("2.50"), "USD/1M input tokens above the tier"),
    Setting("VAULT_FALLBACK_OUTPUT_PRICE_ABOVE", parse_usd, parse_usd("15.00"), "USD/1M output tokens above the tier"),
    Setting("VAULT_FALLBACK_CACHED_PRICE_ABOVE", parse_usd, parse_usd("0.25"), "USD/1M cached tokens above the tier"),
    Setting("VAULT_FALLBACK_GROUNDING_FEE", parse_usd, parse_usd("35"),
            "unknown models: USD per 1,000 prompts grounded with Google Search; 0 = none"),
    Setting("VAULT_DEFAULT_INPUT_TOKEN_LIMIT", int, 1_048_576, "input token limit of models not in the model table"),
    Setting("VAULT_DEFAULT_OUTPUT_TOKEN_LIMIT", int, 65_536, "output token limit of models not in the model table"),
    Setting("VAULT_HOLD_FLOOR", parse_usd, parse_usd("0.0001"), "smallest hold (USD) of a billable request"),
    Setting("VAULT_OVERDRAFT_LIMIT", parse_usd, parse_usd("0.01"),
            "USD a hold may take a positive balance below zero; a balance never ends lower (see README)"),
    Setting("VAULT_MIN_OUTPUT_TOKENS", int, 1024,
            "smallest output cap a request is admitted with when the balance cannot cover its own (402 below)"),
    Setting("VAULT_HOLD_MAX_AGE_SECONDS", float, 3600.0,
            "a hold still open after this is settled as abandoned; must exceed the longest request"),
    Setting("VAULT_SWEEP_INTERVAL_SECONDS", float, 60.0,
            "at most this often each worker sweeps abandoned holds (on a request); 0 = only at start and by CLI"),
    Setting("VAULT_SETTLE_DELAY_MS", float, 20.0,
            "settlements are written in batches gathered over this many ms; 0 = each at once, in its request"),
    Setting("VAULT_KEY_CACHE_SIZE", int, 10_000, "checked Vault keys each worker keeps in memory"),
    Setting("VAULT_MAX_UPLOAD_BYTES", int, 2 * 1024 ** 3, "largest file uploaded through the Vault (Google's 2 GB)"),
    Setting("VAULT_USER_STORAGE_BYTES", int, 2 * 1024 ** 3,
            "bytes of live files (and uploads under way) each user may hold; 0 = no uploads"),
    Setting("VAULT_UPLOAD_SESSION_SECONDS", float, 3600.0, "a resumable upload must finish within this"),
    Setting("VAULT_CACHE_STORAGE_PRICE", parse_usd, parse_usd("1.00"),
            "USD per 1M cached-content tokens per hour of storage, charged for the TTL set"),
    Setting("VAULT_ALERT_INTERVAL_SECONDS", float, 30.0,
            "each worker's alert monitor scans balances and the pool this often; 0 = no background monitor"),
    Setting("VAULT_ALERT_TIMEOUT_SECONDS", float, 5.0, "seconds a webhook receiver has to answer an alert"),
    Setting("VAULT_ALERT_MAX_ATTEMPTS", int, 6, "webhook attempts per alert before it is marked failed"),
    Setting("VAULT_ALERT_RETRY_SECONDS", float, 30.0, "wait after a failed webhook attempt, doubled each time"),
    Setting("VAULT_SMTP_HOST", str, None, "SMTP server for alert email; unset = no email"),
    Setting("VAULT_SMTP_PORT", int, 587, "SMTP port"),
    Setting("VAULT_SMTP_USER", str, None, "SMTP login; unset = no login"),
    Setting("VAULT_SMTP_PASSWORD", str, None, "SMTP password"),
    Setting("VAULT_SMTP_FROM", str, "gemini-vault@localhost", "sender address of alert email"),
    Setting("VAULT_SMTP_STARTTLS", parse_bool, True, "upgrade the SMTP connection with STARTTLS"),
)

OWASP_ARGON2_MINIMUM = {"VAULT_ARGON2_TIME_COST": 2, "VAULT_ARGON2_MEMORY_KIB": 19456}


def settings_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """Read every setting from `environ`, falling back to its default."""
    config: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = environ.get(setting.name)
        if raw is None or (raw == "" and setting.default is not None):
            config[setting.name] = setting.default
            continue
        try:
            config[setting.name] = setting.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{setting.name}: {exc}") from exc
    return config


def finalize(config: dict[str, Any], instance_path: str) -> None:
    """Fill derived settings in place and refuse configurations that cannot be run."""
    production = config["VAULT_ENV"] == "production"
    if production:
        require_real_secrets(config)
    else:
        config["SECRET_KEY"] = config["SECRET_KEY"] or dev_secret(instance_path, "secret_key")
        config["VAULT_ENCRYPTION_KEY"] = config["VAULT_ENCRYPTION_KEY"] or dev_secret(
            instance_path, "encryption_key", Fernet.generate_key().decode()
        )
    check_encryption_keys(config["VAULT_ENCRYPTION_KEY"])
    config["VAULT_FINGERPRINT_KEY"] = (config["VAULT_FINGERPRINT_KEY"] or "").strip() or None
    check_fingerprint_key(config["VAULT_FINGERPRINT_KEY"])
    check_redis_timing(config)
    check_password_cost(config)
    if config["VAULT_PROXY_HOPS"] < 1:
        raise ConfigError("VAULT_PROXY_HOPS must be at least 1")
    check_billing_numbers(config)
    if config["VAULT_OVERDRAFT_LIMIT"] < 0 or config["VAULT_MIN_OUTPUT_TOKENS"] < 1:
        raise ConfigError("VAULT_OVERDRAFT_LIMIT cannot be negative and VAULT_MIN_OUTPUT_TOKENS must be at least 1")
    if config["VAULT_SETTLE_DELAY_MS"] < 0 or config["VAULT_KEY_CACHE_SIZE"] < 1:
        raise ConfigError("VAULT_SETTLE_DELAY_MS must not be negative and VAULT_KEY_CACHE_SIZE must be positive")
    if config["VAULT_MAX_UPLOAD_BYTES"] < 1 or config["VAULT_USER_STORAGE_BYTES"] < 0 \
            or config["VAULT_UPLOAD_SESSION_SECONDS"] <= 0 or config["VAULT_CACHE_STORAGE_PRICE"] < 0:
        raise ConfigError("VAULT_MAX_UPLOAD_BYTES and VAULT_UPLOAD_SESSION_SECONDS must be positive; "
                          "VAULT_USER_STORAGE_BYTES and VAULT_CACHE_STORAGE_PRICE must not be negative")
    if config["VAULT_HOLD_MAX_AGE_SECONDS"] <= 0 or config["VAULT_SWEEP_INTERVAL_SECONDS"] < 0:
        raise ConfigError("VAULT_HOLD_MAX_AGE_SECONDS must be positive and VAULT_SWEEP_INTERVAL_SECONDS not negative")
    if config["VAULT_ALERT_INTERVAL_SECONDS"] < 0 or config["VAULT_ALERT_MAX_ATTEMPTS"] < 1 \
            or config["VAULT_ALERT_TIMEOUT_SECONDS"] <= 0 or config["VAULT_ALERT_RETRY_SECONDS"] < 0:
        raise ConfigError("VAULT_ALERT_MAX_ATTEMPTS and VAULT_ALERT_TIMEOUT_SECONDS must be positive; "
                          "VAULT_ALERT_INTERVAL_SECONDS and VAULT_ALERT_RETRY_SECONDS must not be negative")
    config["SQLALCHEMY_DATABASE_URI"] = database_url(config["DATABASE_URL"], instance_path)
    config["MAX_CONTENT_LENGTH"] = config["VAULT_MAX_BODY_BYTES"]
    secure = config["VAULT_COOKIE_SECURE"]
    secure = production if secure is None else secure
    config.update(
        SESSION_COOKIE_SECURE=secure,
        REMEMBER_COOKIE_SECURE=secure,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,
    )


def check_billing_numbers(config: Mapping[str, Any]) -> None:
    """Fallback prices and default token limits cannot be negative (limits not even zero)."""
    for suffix in ("INPUT_PRICE", "OUTPUT_PRICE", "CACHED_PRICE", "TIER_THRESHOLD", "INPUT_PRICE_ABOVE",
                   "OUTPUT_PRICE_ABOVE", "CACHED_PRICE_ABOVE", "GROUNDING_FEE"):
        name = f"VAULT_FALLBACK_{suffix}"
        if config[name] < 0:
            raise ConfigError(f"{name} cannot be negative")
    for name in ("VAULT_DEFAULT_INPUT_TOKEN_LIMIT", "VAULT_DEFAULT_OUTPUT_TOKEN_LIMIT"):
        if config[name] < 1:
            raise ConfigError(f"{name} must be at least 1")


def require_real_secrets(config: Mapping[str, Any]) -> None:
    """A production start needs both secrets set explicitly, not generated or placeholders."""
    secret_key = config["SECRET_KEY"] or ""
    if secret_key.strip().lower() in PLACEHOLDER_SECRETS or len(secret_key) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError(
            f"SECRET_KEY must be set to a random value of at least {MIN_SECRET_KEY_LENGTH} "
            "characters when VAULT_ENV=production"
        )
    if not config["VAULT_ENCRYPTION_KEY"]:
        raise ConfigError(
            "VAULT_ENCRYPTION_KEY must be set when VAULT_ENV=production "
            "(generate one with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')"
        )


def check_encryption_keys(raw: str) -> None:
    """Every comma-separated entry of VAULT_ENCRYPTION_KEY must be a valid Fernet key."""
    keys = parse_list(raw)
    if not keys:
        raise ConfigError("VAULT_ENCRYPTION_KEY is empty")
    for key in keys:
        try:
            Fernet(key)
        except ValueError as exc:
            raise ConfigError(
                "VAULT_ENCRYPTION_KEY must be Fernet keys (32 url-safe base64-encoded bytes)"
            ) from exc


def check_fingerprint_key(raw: str | None) -> None:
    """VAULT_FINGERPRINT_KEY, when set, is a Fernet key (a retired encryption key) or 32+ characters."""
    if raw is None:
        return
    try:
        Fernet(raw)
    except ValueError:
        if len(raw) < MIN_SECRET_KEY_LENGTH:
            raise ConfigError(f"VAULT_FINGERPRINT_KEY must be a Fernet key or at least {MIN_SECRET_KEY_LENGTH} "
                              "random characters") from None


def check_redis_timing(config: Mapping[str, Any]) -> None:
    """Redis timeouts and probe interval must be positive; Retry-After at least a second."""
    if config["VAULT_REDIS_TIMEOUT_SECONDS"] <= 0 or config["VAULT_REDIS_RETRY_SECONDS"] <= 0:
        raise ConfigError("VAULT_REDIS_TIMEOUT_SECONDS and VAULT_REDIS_RETRY_SECONDS must be positive")
    if config["VAULT_RETRY_AFTER_MAX_SECONDS"] < 1:
        raise ConfigError("VAULT_RETRY_AFTER_MAX_SECONDS must be at least 1")


def check_password_cost(config: Mapping[str, Any]) -> None:
    """Refuse argon2 parameters below OWASP's minimum."""
    for name, minimum in OWASP_ARGON2_MINIMUM.items():
        if config[name] < minimum:
            raise ConfigError(f"{name} must be at least {minimum} (OWASP minimum)")
    if config["VAULT_ARGON2_PARALLELISM"] < 1:
        raise ConfigError("VAULT_ARGON2_PARALLELISM must be at least 1")


def database_url(configured: str | None, instance_path: str) -> str:
    """The configured URL, else a SQLite file in the instance folder."""
    if configured:
        # Heroku-style URLs name the dialect `postgres`; SQLAlchemy wants psycopg 3 spelled out.
        for prefix in ("postgres://", "postgresql://"):
            if configured.startswith(prefix):
                return "postgresql+psycopg://" + configured[len(prefix):]
        return configured
    Path(instance_path).mkdir(parents=True, exist_ok=True)
    return "sqlite:///" + os.path.join(instance_path, "vault.sqlite3")


def dev_secret(instance_path: str, name: str, value: str | None = None) -> str:
    """Return the development secret kept in `instance_path/name`, creating it once.

    Several gunicorn workers may start at once: the file is written aside and linked into
    place, so every worker reads the same complete value.
    """
    folder = Path(instance_path)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    if not target.exists():
        fd, scratch = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(value or secrets.token_urlsafe(48))
            os.link(scratch, target)
        except FileExistsError:
            pass
        finally:
            os.unlink(scratch)
    return target.read_text().strip()
