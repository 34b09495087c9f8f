"""Operator commands: `flask --app wsgi create-admin`, `upstream add|list|reencrypt` and `billing …`.

They call the same functions as the web and never print a full upstream key.
"""

import sys

import click
from flask import Flask, current_app

from vault import accounts, audit, pool
from vault.admin.auditing import USER_STATE, price_row
from vault.billing import balances, catalog, limits
from vault.billing.money import nano_to_usd
from vault.config import parse_list
from vault.errors import VaultError
from vault.extensions import db
from vault.jsonapi import NewAccountBody, parse_body
from vault.models import ModelPrice
from vault.pool import encryption
from vault.runtime import runtime


@click.command("create-admin")
@click.option("--email", required=True, help="Email of the admin account.")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="Password (prompted for when omitted, so it stays out of shell history).")
@click.option("--force", is_flag=True, help="Also promote an existing account that is not an admin.")
def create_admin(email: str, password: str, force: bool) -> None:
    """Create an admin account, or reset an existing admin's password.

    An existing account gets the password and loses every session and token it had. An
    existing account that is not an admin is only promoted with --force.
    """
    try:
        body = parse_body(NewAccountBody, {"email": email, "password": password})
        before = audit.snapshot(accounts.find_user_by_email(db.session, body.email), USER_STATE)
        user, created = accounts.ensure_admin(
            db.session, body.email, body.password, runtime().passwords,
            current_app.config["VAULT_DEFAULT_BALANCE"], force=force,
        )
    except VaultError as exc:
        raise click.ClickException(describe(exc)) from None
    db.session.flush()
    audit.record(db.session, None, "user.create_admin", f"user:{user.id}", before,
                 audit.snapshot(user, USER_STATE) | {"password": "set"}, ip="cli", only_changes=False)
    db.session.commit()
    if created:
        click.echo(f"Created admin {user.email} (id {user.id}).")
    else:
        click.echo(f"Updated admin {user.email} (id {user.id}): password set; every session and token ended.")


@click.group("upstream")
def upstream() -> None:
    """Manage the pool of upstream Gemini API keys."""


@upstream.command("add")
@click.argument("keys", nargs=-1, required=True)
def add_keys(keys: tuple[str, ...]) -> None:
    """Add KEYS to the pool; `-` reads keys from standard input, one per line."""
    secrets = expand_stdin(keys)
    try:
        results = pool.add_upstream_keys(db.session, secrets, runtime().secret_box)
    except VaultError as exc:
        raise click.ClickException(describe(exc)) from None
    added = [result for result in results if result.created]  # a revived key counts as added
    if added:
        audit.record(db.session, None, "pool.add", "upstream_keys", None,
                     {"added": len(added), "duplicates": len(results) - len(added), "invalid_count": 0},
                     ip="cli", only_changes=False)
    db.session.commit()
    for result in results:
        if result.revived:
            runtime().health.set_enabled(result.key.id, True)  # clear what shared state it was deleted in
        status = "revived" if result.revived else "added" if result.created else "already in the pool"
        click.echo(f"{result.key.masked}  id {result.key.id}  {status}")


@upstream.command("list")
@click.option("--include-deleted", is_flag=True, help="Also list keys an admin deleted.")
def list_keys(include_deleted: bool) -> None:
    """List the pool, masked, with state and counters."""
    keys = pool.list_upstream_keys(db.session, include_deleted=include_deleted)
    if not keys:
        click.echo("The pool is empty. Add keys with: flask --app wsgi upstream add KEY")
        return
    click.echo(f"{'ID':>4}  {'KEY':<12}  {'STATE':<9}  {'REQUESTS':>8}  {'FAILURES':>8}  LABEL")
    for key in keys:
        click.echo(f"{key.id:>4}  {key.masked:<12}  {key.state.value:<9}  "
                   f"{key.request_count:>8}  {key.failure_count:>8}  {key.label}")


@upstream.command("reencrypt")
def reencrypt_keys() -> None:
    """Encrypt every stored key, the alert webhook and open uploads' upstream URLs under the first
    VAULT_ENCRYPTION_KEY entry (after putting a new key first).

    Fingerprints made under another key are rewritten under the fingerprint key. Safe while
    the Vault serves, and to run again. Exits 1 if something cannot be decrypted.
    """
    config = current_app.config
    report = encryption.reencrypt_stored(db.session, runtime().secret_box)
    db.session.commit()
    click.echo(f"Re-encrypted {report.reencrypted} key(s) under the first VAULT_ENCRYPTION_KEY entry; "
               f"{report.refingerprinted} fingerprint(s) rewritten; {report.deleted} deleted key(s) hold no secret.")
    click.echo(f"Re-encrypted {report.others} other row(s): the alert webhook, open uploads' upstream URLs.")
    if report.duplicates:
        click.echo(f"Stored twice (delete one of each pair): ids {', '.join(map(str, report.duplicates))}.")
    if len(parse_list(config["VAULT_ENCRYPTION_KEY"])) > 1 and not config["VAULT_FINGERPRINT_KEY"]:
        click.echo("Fingerprints are keyed by the last VAULT_ENCRYPTION_KEY entry: when you drop it, "
                   "set VAULT_FINGERPRINT_KEY to it.")
    unreadable = ([f"{len(report.undecryptable)} key(s) (ids {', '.join(map(str, report.undecryptable))})"]
                  if report.undecryptable else []) + report.unreadable
    if unreadable:
        raise click.ClickException(f"These cannot be decrypted with any VAULT_ENCRYPTION_KEY entry: "
                                   f"{'; '.join(unreadable)}.")


@click.group("billing")
def billing() -> None:
    """Prices, model limits and the ledger."""


@billing.command("seed-prices")
@click.option("--force", is_flag=True, help="Also overwrite models already in the tables with the catalog.")
def seed_prices(force: bool) -> None:
    """Add the catalog's models (vault/billing/catalog.py) missing from the price and model tables.

    Every worker charges the new prices from its next request on.
    """
    before = {row.model: price_row(row) for row in db.session.scalars(db.select(ModelPrice))}
    priced = catalog.seed_prices(db.session, force=force)
    for model in priced:
        audit.record(db.session, None, "price.put", f"price:{model}", before.get(model),
                     price_row(db.session.get(ModelPrice, model)), ip="cli")
    limited = catalog.seed_models(db.session, force=force)
    db.session.commit()
    click.echo(f"Prices {'written' if force else 'added'}: {', '.join(priced) or 'none'}.")
    click.echo(f"Token limits {'written' if force else 'added'}: {', '.join(limited) or 'none'}.")


@billing.command("refresh-models")
def refresh_models() -> None:
    """Read every model's token limits from the upstream's models.list (one pool key) into the model table."""
    vault = runtime()
    try:
        found = limits.refresh_from_upstream(vault.upstream, vault.health)
    except VaultError as exc:
        raise click.ClickException(describe(exc)) from None
    changed = limits.store_limits(db.session, found)
    db.session.commit()
    click.echo(f"{len(found)} models listed; limits changed for {len(changed)}: {', '.join(changed) or 'none'}.")


@billing.command("sweep")
def sweep_holds() -> None:
    """Settle every hold older than VAULT_HOLD_MAX_AGE_SECONDS as an abandoned request.

    Safe while the Vault serves, on any number of hosts: each hold is settled once.
    """
    swept = runtime().sweeper.sweep()
    click.echo(f"Settled {swept} abandoned hold(s).")


@billing.command("check")
def check_balances() -> None:
    """Recompute every balance from the ledger; list each mismatch and exit 1 if there is any.

    Expected balance = adjustments (signup credit included) - settled costs - open holds.
    """
    checks = balances.check_balances(db.session)
    wrong = [check for check in checks if not check.consistent]
    for check in wrong:
        click.echo(f"user {check.user_id} {check.email}: stored {nano_to_usd(check.stored)} USD, expected "
                   f"{nano_to_usd(check.expected)} USD, difference {nano_to_usd(check.difference)} USD "
                   f"({check.difference} nano-USD)")
    holds = sum(check.open_holds for check in checks)
    held = sum(check.held for check in checks)
    click.echo(f"{len(checks)} user(s) checked, {len(wrong)} mismatch(es); {holds} open hold(s) of "
               f"{nano_to_usd(held)} USD.")
    if wrong:
        raise SystemExit(1)


def expand_stdin(keys: tuple[str, ...]) -> list[str]:
    """Replace a `-` argument by the non-blank lines of standard input."""
    expanded: list[str] = []
    for key in keys:
        if key == "-":
            expanded.extend(line.strip() for line in sys.stdin if line.strip())
        else:
            expanded.append(key)
    return expanded


def describe(error: VaultError) -> str:
    """One line for a CLI user from an error and its field messages."""
    details = "; ".join(f"{name}: {message}" for name, message in error.fields.items())
    return f"{error.message} {details}".strip()


def register_commands(app: Flask) -> None:
    """Attach the operator commands to `app.cli`."""
    app.cli.add_command(create_admin)
    app.cli.add_command(upstream)
    app.cli.add_command(billing)
