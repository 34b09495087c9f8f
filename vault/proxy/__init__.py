"""The Gemini proxy: OpenAI-compatible and native paths, authenticated by Vault key.

Clients authenticate with a Vault key, not a session, so CSRF does not apply here.
"""

from flask import Blueprint

from vault.extensions import csrf

bp = Blueprint("proxy", __name__)
csrf.exempt(bp)

from vault.proxy import views  # noqa: E402,F401  (routes register themselves on bp)
