"""Objects built once per app (hashers, the secret box, the key pool and the upstream
client), kept in `app.extensions["vault"]` and reached through `runtime()`."""

from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, current_app
from sqlalchemy.orm import Session, sessionmaker

from vault.access import KeyCache
from vault.alerts import Alerts, alerts_from_config
from vault.billing.holds import Holds
from vault.billing.meter import Books, HoldPolicy
from vault.billing.prices import Price, PriceBook, Rates
from vault.billing.settler import SettlementWriter
from vault.billing.sweeper import Sweeper
from vault.extensions import db
from vault.observability import Metrics
from vault.pool.health import PoolHealth
from vault.pool.rotator import KeyRotator, RotatorPolicy
from vault.ratelimit import Limiter, LoginThrottle
from vault.redisguard import RedisGuard
from vault.routing.table import RoutingBook
from vault.security import PasswordHashing, SecretBox
from vault.upstream.client import UpstreamClient


@dataclass
class VaultRuntime:
    """The app's long-lived helpers."""

    passwords: PasswordHashing
    secret_box: SecretBox
    session_factory: Callable[[], Session]
    upstream: UpstreamClient
    health: PoolHealth
    max_retries: int
    prices: PriceBook
    hold_policy: HoldPolicy
    login_throttle: LoginThrottle
    limiter: Limiter
    default_rpm: int
    metrics: Metrics
    sweeper: Sweeper
    books: Books
    keys: KeyCache
    routing: RoutingBook
    alerts: Alerts


def init_runtime(app: Flask) -> VaultRuntime:
    """Build the runtime objects from `app.config` and attach them to the app."""
    config = app.config
    box = SecretBox(config["VAULT_ENCRYPTION_KEY"], config["VAULT_FINGERPRINT_KEY"])
    with app.app_context():
        engine = db.engine
        session_factory = sessionmaker(bind=engine, expire_on_commit=False)
    policy = RotatorPolicy(
        cooldown_base=config["VAULT_COOLDOWN_BASE_SECONDS"], cooldown_max=config["VAULT_COOLDOWN_MAX_SECONDS"],
        max_failures=config["VAULT_KEY_MAX_FAILURES"], disable_seconds=config["VAULT_KEY_DISABLE_SECONDS"],
        breaker_failures=config["VAULT_KEY_BREAKER_FAILURES"], breaker_seconds=config["VAULT_KEY_BREAKER_SECONDS"],
        retry_after_max=config["VAULT_RETRY_AFTER_MAX_SECONDS"],
    )
    prefix, redis_url = config["VAULT_REDIS_PREFIX"], config["REDIS_URL"]
    timeout = config["VAULT_REDIS_TIMEOUT_SECONDS"]
    rotator, guard = KeyRotator(policy), None
    if redis_url:
        from vault.pool.shared import SharedKeyRotator, connect  # redis-py only when there is a Redis

        client = connect(redis_url, timeout)
        # One breaker per Redis: the rotator and the limiter stop using it together.
        guard = RedisGuard(client.ping, config["VAULT_REDIS_RETRY_SECONDS"])
        rotator = SharedKeyRotator(client, policy, prefix=prefix + "pool:", guard=guard)
    limiter = Limiter(redis_url, prefix + "limits:", guard, timeout)
    metrics = Metrics()
    alerts = alerts_from_config(config, session_factory, box)
    built = VaultRuntime(
        passwords=PasswordHashing(
            time_cost=config["VAULT_ARGON2_TIME_COST"],
            memory_kib=config["VAULT_ARGON2_MEMORY_KIB"],
            parallelism=config["VAULT_ARGON2_PARALLELISM"],
        ),
        secret_box=box,
        session_factory=session_factory,
        upstream=UpstreamClient(
            config["GEMINI_BASE_URL"], config["VAULT_UPSTREAM_CONNECT_TIMEOUT"],
            config["VAULT_UPSTREAM_READ_TIMEOUT"], config["VAULT_UPSTREAM_POOL_SIZE"],
        ),
        health=PoolHealth(rotator, session_factory, box, config["VAULT_POOL_REFRESH_SECONDS"],
                          on_attempt=lambda verdict: metrics.attempts.labels(verdict).inc(),
                          on_failover=metrics.failovers.inc, on_disabled=alerts.note_key_disabled),
        max_retries=config["VAULT_UPSTREAM_MAX_RETRIES"],
        prices=PriceBook(session_factory, fallback_price(config), config["VAULT_PRICE_REFRESH_SECONDS"],
                         default_limits=(config["VAULT_DEFAULT_INPUT_TOKEN_LIMIT"],
                                         config["VAULT_DEFAULT_OUTPUT_TOKEN_LIMIT"])),
        hold_policy=HoldPolicy(config["VAULT_HOLD_FLOOR"], min_output_tokens=config["VAULT_MIN_OUTPUT_TOKENS"],
                               overdraft_nano=config["VAULT_OVERDRAFT_LIMIT"],
                               max_age_seconds=config["VAULT_HOLD_MAX_AGE_SECONDS"]),
        login_throttle=LoginThrottle(limiter, config["VAULT_LOGIN_MAX_FAILURES"], config["VAULT_LOGIN_WINDOW_SECONDS"]),
        limiter=limiter,
        default_rpm=config["VAULT_RATE_LIMIT_RPM"],
        metrics=metrics,
        sweeper=Sweeper(session_factory, config["VAULT_SWEEP_INTERVAL_SECONDS"]),
        books=Books(Holds(engine, session_factory),
                    SettlementWriter(engine, session_factory, config["VAULT_SETTLE_DELAY_MS"] / 1000,
                                     on_settled=alerts.note_settled)),
        keys=KeyCache(config["VAULT_KEY_CACHE_SIZE"]),
        routing=RoutingBook(session_factory, config["VAULT_PRICE_REFRESH_SECONDS"]),
        alerts=alerts,
    )
    app.extensions["vault"] = built
    return built


def fallback_price(config) -> Price:
    """The price charged for models missing from the price table (per 1M tokens), tiered like
    Gemini's Pro models unless `VAULT_FALLBACK_TIER_THRESHOLD` is 0, with a grounding fee per
    Search-grounded prompt (the setting is per 1,000)."""
    fee = (config["VAULT_FALLBACK_GROUNDING_FEE"] + 500) // 1000
    base = Rates(config["VAULT_FALLBACK_INPUT_PRICE"], config["VAULT_FALLBACK_OUTPUT_PRICE"],
                 config["VAULT_FALLBACK_CACHED_PRICE"], grounding=fee)
    threshold = config["VAULT_FALLBACK_TIER_THRESHOLD"]
    if not threshold:
        return Price("fallback", base)
    above = Rates(config["VAULT_FALLBACK_INPUT_PRICE_ABOVE"], config["VAULT_FALLBACK_OUTPUT_PRICE_ABOVE"],
                  config["VAULT_FALLBACK_CACHED_PRICE_ABOVE"], grounding=fee)
    return Price("fallback", base, threshold, above)


def runtime() -> VaultRuntime:
    """The current app's runtime objects."""
    return current_app.extensions["vault"]
