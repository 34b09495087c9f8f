"""API reference: the OpenAPI document at `/openapi.json` and Swagger UI over it at `/docs`.

Both are public: they describe the API, they hold no data. Swagger UI is vendored under
`static/vendor/swagger-ui-dist/`, so the page needs no CDN.
"""

import json

from flask import Blueprint, Response, current_app, render_template

bp = Blueprint("docs", __name__)


@bp.get("/openapi.json")
def openapi_json() -> Response:
    """The OpenAPI 3.1 document of this app's JSON API and proxy."""
    from vault.openapi import build_openapi  # here: it loads pydantic, which a proxy-only worker never needs

    document = build_openapi(current_app._get_current_object())
    # json.dumps keeps the document's own order (jsonify would sort the keys).
    return current_app.response_class(json.dumps(document), mimetype="application/json")


@bp.get("/docs")
def docs_page() -> str:
    """Swagger UI, rendering `/openapi.json`."""
    return render_template("docs.html")
