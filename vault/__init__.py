"""Gemini-Vault: a self-hosted gateway for the Google Gemini API.

`create_app()` is the one place the application is assembled.
"""

import os
from collections.abc import Callable, Iterable, Mapping
from importlib import import_module
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask

from vault.config import finalize, settings_from_env
from vault.database import engine_options, install_checkout_ping, install_sqlite_pragmas
from vault.extensions import csrf, db, login_manager

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def create_app(config: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None,
               cli: bool = True) -> Flask:
    """Build the app from the environment (`environ`, default `os.environ`) and `config` overrides.

    `cli=False` (a gunicorn worker) leaves out `flask db` and the operator commands: a process
    that only serves never runs them, and their modules (Alembic above all) cost it ~8 MB.
    """
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
    if cli:
        init_cli(app)
    if app.config["VAULT_BOOTSTRAP"]:
        from vault.bootstrap import bootstrap

        bootstrap(app)
    return app


def init_extensions(app: Flask) -> None:
    """Bind the extensions and build the runtime objects."""
    from vault import models  # noqa: F401  (tables must be known before Migrate looks)
    from vault.runtime import init_runtime

    db.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to see that page."
    login_manager.login_message_category = "info"
    csrf.init_app(app)
    with app.app_context():
        install_sqlite_pragmas(db.engine)
        install_checkout_ping(db.engine)
    init_runtime(app)


def init_cli(app: Flask) -> None:
    """Attach `flask db …` (Flask-Migrate over `migrations/`) and the operator commands."""
    # Imported here, not at the top: create_app(cli=False) must not load Alembic (see create_app).
    from flask_migrate import Migrate

    from vault.cli import register_commands

    Migrate(app, db, directory=str(PROJECT_ROOT / "migrations"), compare_type=True)
    register_commands(app)


def register_blueprints(app: Flask) -> None:
    """Register every area, the error handlers and the request hooks."""
    from vault import admin, auth, dashboard, docs, health, proxy
    from vault.alerts import install_alerts
    from vault.billing.sweeper import install_sweeper
    from vault.errors import register_error_handlers
    from vault.headers import install_headers
    from vault.inbound import install_body_reader
    from vault.observability import install_request_ids
    from vault.sessions import install_sessions
    from vault.templating import register_filters

    for blueprint in (auth.bp, dashboard.bp, admin.bp, proxy.bp, health.bp, docs.bp):
        app.register_blueprint(blueprint)
    register_error_handlers(app)
    register_filters(app)
    install_request_ids(app)
    install_sweeper(app)
    install_alerts(app)
    # Proxied calls read their body themselves, after the Vault key is checked.
    install_body_reader(app, skip=lambda req: req.blueprint == proxy.bp.name)
    install_headers(app)
    install_sessions(app)


def add_lazy_routes(bp: Blueprint, module: str, routes: Iterable[tuple[str, str, str]]) -> None:
    """Route each `(method, rule, function)` of `bp` to `function` in `module`, imported on the first call.

    For an area's JSON API (`api.py`): its request bodies are pydantic models, and pydantic
    costs a worker ~9 MB that a worker serving only the proxy and the pages never needs.
    Every route is exempt from the app-wide CSRF check, as the JSON API has always been: a
    bearer token needs none, and `require_user` checks it for a cookie session.
    """
    for method, rule, name in routes:
        bp.add_url_rule(rule, name, lazy_view(module, name), methods=[method])
        csrf.exempt(f"{module}.{name}")


def lazy_view(module: str, name: str) -> Callable[..., Any]:
    """A view that imports `module` when it is first called and hands every call to its `name`."""

    def view(**arguments: Any) -> Any:
        return getattr(import_module(module), name)(**arguments)

    view.__module__, view.__name__, view.__qualname__ = module, name, name
    return view
