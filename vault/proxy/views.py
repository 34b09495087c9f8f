"""The proxy's routes: every path under `/v1beta/` and `/v1/` lands in one view.

Flask only narrows the prefix; which calls exist is decided by the allow-list in
`vault.proxy.routes`, so a path or method Flask would have matched loosely (HEAD on a GET
route, merged slashes) is refused there instead of reaching the upstream.
"""

from flask import Response

from vault.proxy import bp
from vault.proxy.forwarding import serve

# HEAD and OPTIONS are listed so that they reach the allow-list (405) instead of Flask running
# the GET view for them; other methods get Flask's 405, also in the caller's dialect.
EVERY_METHOD = ["GET", "POST", "PATCH", "DELETE", "HEAD", "OPTIONS"]
UPLOAD_METHODS = ["POST", "HEAD", "OPTIONS"]


@bp.route("/v1beta/<path:rest>", methods=EVERY_METHOD, merge_slashes=False, strict_slashes=False)
@bp.route("/v1/<path:rest>", methods=EVERY_METHOD, merge_slashes=False, strict_slashes=False)
@bp.route("/upload/<path:rest>", methods=UPLOAD_METHODS, merge_slashes=False, strict_slashes=False)
def proxied(rest: str) -> Response:
    """A native or OpenAI-compatible Gemini call (see `vault.proxy.routes` for the list)."""
    return serve()
