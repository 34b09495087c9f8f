"""Objects built once per app (hashers, the secret box, later the rotator and upstream
client), kept in `app.extensions["vault"]` and reached through `runtime()`."""

from dataclasses import dataclass

from flask import Flask, current_app

from vault.security import PasswordHashing, SecretBox


@dataclass
class VaultRuntime:
    """The app's long-lived helpers."""

    passwords: PasswordHashing
    secret_box: SecretBox


def init_runtime(app: Flask) -> VaultRuntime:
    """Build the runtime objects from `app.config` and attach them to the app."""
    config = app.config
    built = VaultRuntime(
        passwords=PasswordHashing(
            time_cost=config["VAULT_ARGON2_TIME_COST"],
            memory_kib=config["VAULT_ARGON2_MEMORY_KIB"],
            parallelism=config["VAULT_ARGON2_PARALLELISM"],
        ),
        secret_box=SecretBox(config["VAULT_ENCRYPTION_KEY"]),
    )
    app.extensions["vault"] = built
    return built


def runtime() -> VaultRuntime:
    """The current app's runtime objects."""
    return current_app.extensions["vault"]
