"""WSGI entry point: `gunicorn -c gunicorn.conf.py wsgi:app`, and `flask --app wsgi …`."""

import logging
import os
import sys

from dotenv import find_dotenv, load_dotenv


def serving() -> bool:
    """True in a gunicorn process; false for `flask --app wsgi …` and for tests."""
    return os.path.basename(sys.argv[0]).startswith("gunicorn")


def _patch_gevent_if_serving() -> None:
    """Patch the standard library for gevent when gunicorn loads us before its worker does.

    gunicorn's gevent worker patches on its own; this guard covers `preload_app`, where the
    app is imported in the master first. CLI commands and tests are never patched.
    """
    if not serving():
        return
    from gevent import monkey

    if not monkey.is_module_patched("socket"):
        monkey.patch_all()


_patch_gevent_if_serving()
load_dotenv(find_dotenv(usecwd=True))  # the working directory's, however Python was started

from vault import create_app  # noqa: E402  (after the gevent patch)
from vault.observability import configure_logging_from_env  # noqa: E402

configure_logging_from_env(os.environ)
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

# gunicorn never runs `flask db` or the operator commands: its workers go without them.
app = create_app(cli=not serving())
