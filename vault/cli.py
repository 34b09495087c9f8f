"""Operator commands: `flask --app wsgi create-admin` and `flask --app wsgi upstream add|list`.

They call the same functions as the web and never print a full upstream key.
"""

import sys

import click
from flask import Flask, current_app

from vault import accounts, pool
from vault.errors import VaultError
from vault.extensions import db
from vault.jsonapi import NewAccountBody, parse_body
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
        user, created = accounts.ensure_admin(
            db.session, body.email, body.password, runtime().passwords,
            current_app.config["VAULT_DEFAULT_BALANCE"], force=force,
        )
    except VaultError as exc:
        raise click.ClickException(describe(exc)) from None
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
    db.session.commit()
    for result in results:
        status = "added" if result.created else "already in the pool"
        click.echo(f"{result.key.masked}  id {result.key.id}  {status}")


@upstream.command("list")
def list_keys() -> None:
    """List the pool, masked, with state and counters."""
    keys = pool.list_upstream_keys(db.session)
    if not keys:
        click.echo("The pool is empty. Add keys with: flask --app wsgi upstream add KEY")
        return
    click.echo(f"{'ID':>4}  {'KEY':<12}  {'STATE':<9}  {'REQUESTS':>8}  {'FAILURES':>8}  LABEL")
    for key in keys:
        click.echo(f"{key.id:>4}  {key.masked:<12}  {key.state.value:<9}  "
                   f"{key.request_count:>8}  {key.failure_count:>8}  {key.label}")


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
