"""Gemini-Vault: a self-hosted gateway for the Google Gemini API.

`create_app()` is the one place the application is assembled.
"""

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from vault.config import finalize, settings_from_env
from vault.database import engine_options, install_idle_ping, install_sqlite_pragmas
from vault.extensions import csrf, db, login_manager, migrate

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def create_app(config: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Flask:
    """Build the app from the environment (`environ`, default `os.environ`) and `config` overrides."""
    settings = settings_from_env(os.environ if environ is None else environ)
    settings.update(config or {})
    instance_path = settings["VAULT_INSTANCE_PATH"] or str(PROJECT_ROOT / "instance")
    app = Flask(
        __name__,
        instance_path=os.path.abspath(instance_path),
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    finalize(settings, app.instance_path)
    app.config.update(settings)
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(
        app.config["SQLALCHEMY_DATABASE_URI"], app.config["VAULT_DB_POOL_SIZE"],
        app.config["VAULT_DB_MAX_OVERFLOW"],
    )
    init_extensions(app)
    register_blueprints(app)
    if app.config["VAULT_BOOTSTRAP"]:
        from vault.bootstrap import bootstrap

        bootstrap(app)
    return app


def init_extensions(app: Flask) -> None:
    """Bind the extensions and build the runtime objects."""
    from vault import models  # noqa: F401  (tables must be known before Migrate looks)
    from vault.runtime import init_runtime

    db.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"), compare_type=True)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to see that page."
    login_manager.login_message_category = "info"
    csrf.init_app(app)
    with app.app_context():
        install_sqlite_pragmas(db.engine)
        install_idle_ping(db.engine)
    init_runtime(app)


def register_blueprints(app: Flask) -> None:
    """Register every area, the error handlers and the CLI commands."""
    from vault import admin, auth, dashboard, docs, health, proxy
    from vault.billing.sweeper import install_sweeper
    from vault.cli import register_commands
    from vault.errors import register_error_handlers
    from vault.headers import install_headers
    from vault.inbound import install_body_reader
    from vault.observability import install_request_ids
    from vault.sessions import install_sessions
    from vault.templating import register_filters

    for blueprint in (auth.bp, dashboard.bp, admin.bp, proxy.bp, health.bp, docs.bp):
        app.register_blueprint(blueprint)
    register_error_handlers(app)
    register_commands(app)
    register_filters(app)
    install_request_ids(app)
    install_sweeper(app)
    # Proxied calls read their body themselves, after the Vault key is checked.
    install_body_reader(app, skip=lambda req: req.blueprint == proxy.bp.name)
    install_headers(app)
    install_sessions(app)
