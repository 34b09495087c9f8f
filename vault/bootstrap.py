"""Apply `VAULT_ADMIN_EMAIL`/`VAULT_ADMIN_PASSWORD` and `GEMINI_API_KEYS` at start, and fill
the price and model tables from the catalog where they lack it, and sweep the holds abandoned
by a previous run.

Idempotent, and safe when several workers start at once: whatever already exists is left
as it is.
"""

import logging

from flask import Flask
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from vault import accounts, pool
from vault.billing import catalog
from vault.config import ConfigError
from vault.errors import Conflict, ValidationFailed
from vault.extensions import db
from vault.models import ModelPrice, UpstreamKeyState
from vault.runtime import runtime

log = logging.getLogger(__name__)


def bootstrap(app: Flask) -> None:
    """Create the configured admin if absent and add the configured upstream keys."""
    config = app.config
    with app.app_context():
        try:
            ready = inspect(db.engine).has_table("users")
        except OperationalError as exc:
            # Start anyway: requests fail closed with 503 until the database is back.
            log.warning("bootstrap skipped: the database is unreachable (%s)", type(exc).__name__)
            return
        if not ready:
            log.info("bootstrap skipped: the database has no tables yet (run 'flask db upgrade')")
            return
        if config["VAULT_ADMIN_EMAIL"] or config["VAULT_ADMIN_PASSWORD"]:
            bootstrap_admin(config["VAULT_ADMIN_EMAIL"], config["VAULT_ADMIN_PASSWORD"],
                            config["VAULT_DEFAULT_BALANCE"])
        for secret in config["GEMINI_API_KEYS"]:
            bootstrap_upstream_key(secret)
        if inspect(db.engine).has_table("gemini_models"):
            bootstrap_catalog()
        if inspect(db.engine).has_table("pending_holds"):
            sweep_abandoned_holds()


def bootstrap_admin(email: str | None, password: str | None, balance_nano: int) -> None:
    """Create the bootstrap admin unless an account with that email exists.

    An existing account is left exactly as it is: an admin keeps its password, and an
    account that is not an admin is never promoted from the environment (anyone may have
    signed up with that email first); `flask --app wsgi create-admin --force` does that.
    """
    try:
        from vault.jsonapi import NewAccountBody, parse_body  # here: pydantic only when an admin is made

        body = parse_body(NewAccountBody, {"email": email, "password": password})
    except ValidationFailed as exc:
        raise ConfigError(f"VAULT_ADMIN_EMAIL/VAULT_ADMIN_PASSWORD: {exc.fields}") from None
    existing = accounts.find_user_by_email(db.session, body.email)
    if existing is not None:
        if not existing.is_admin:
            log.warning("VAULT_ADMIN_EMAIL names an existing account that is not an admin; it was NOT promoted. "
                        "If it is yours, run: flask --app wsgi create-admin --email %s --force", body.email)
        return
    try:
        accounts.create_admin(db.session, body.email, body.password, runtime().passwords, balance_nano)
        db.session.commit()
        log.info("bootstrap admin %s created", body.email)
    except Conflict:
        db.session.rollback()  # another worker (or a sign-up) took the email first


def bootstrap_upstream_key(secret: str) -> None:
    """Add one configured upstream key to the pool if it is not there yet.

    A key an admin deleted stays deleted: the environment does not bring it back (adding it
    again by hand does).
    """
    try:
        added = pool.add_upstream_key(db.session, secret, runtime().secret_box, revive=False)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()  # another worker added it first
        return
    except ValidationFailed as exc:
        raise ConfigError(f"GEMINI_API_KEYS: {exc.message}") from None
    if added.created:
        log.info("upstream key %s added to the pool", added.key.masked)
    elif added.key.state is UpstreamKeyState.DELETED:
        log.info("upstream key %s from GEMINI_API_KEYS was deleted by an admin; left out of the pool",
                 added.key.masked)


def bootstrap_catalog() -> None:
    """Seed an empty price table from the catalog, and the catalog's token limits of models missing
    from the model table. A price table with rows is left alone: an admin may have removed a model
    on purpose (`flask --app wsgi billing seed-prices` adds the missing ones on request)."""
    try:
        if db.session.scalar(select(ModelPrice.model).limit(1)) is None:
            log.info("price table seeded from the catalog: %s", ", ".join(catalog.seed_prices(db.session)))
        catalog.seed_models(db.session)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()  # another worker seeded first


def sweep_abandoned_holds() -> None:
    """Settle the expired holds of requests whose worker died (a crash, a kill, a lost host)."""
    try:
        swept = runtime().sweeper.sweep()
    except SQLAlchemyError as exc:
        log.warning("start-up sweep of abandoned holds skipped (%s); the next sweep retries", type(exc).__name__)
        return
    if swept:
        log.info("settled %d abandoned hold(s) at start", swept)
