"""One error vocabulary, rendered in the caller's dialect by app-level handlers.

Raise a `VaultError` subclass anywhere; the handlers pick the envelope from the request:
Google's on native Gemini paths, OpenAI's on OpenAI-compatible paths, the Vault's own JSON
on the JSON API, and an HTML page elsewhere. The 500 handler never echoes exception text,
which might contain a secret.
"""

import logging
import traceback
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from sqlalchemy.exc import DataError, SQLAlchemyError
from werkzeug.exceptions import HTTPException

from vault.extensions import db

log = logging.getLogger(__name__)


POLICY_HEADER = "X-Vault-Policy"  # names the key policy that refused a proxied call


def policy_header(policy: str) -> dict[str, str]:
    """The headers of a refusal by the key policy `policy` (`spend_cap`, `rate_limit_rpm`, ...)."""
    return {POLICY_HEADER: policy}


class VaultError(Exception):
    """Base of every error the Vault answers with on purpose."""

    status = 500
    code = "internal_error"
    google_status = "INTERNAL"
    openai_type = "server_error"
    default_message = "Internal error."

    def __init__(
        self,
        message: str | None = None,
        *,
        fields: dict[str, str] | None = None,
        retry_after: int | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        self.fields = fields or {}
        self.retry_after = retry_after
        self.headers = dict(headers or {})


class BadRequest(VaultError):
    status, code, google_status, openai_type = 400, "invalid_request", "INVALID_ARGUMENT", "invalid_request_error"
    default_message = "The request is not valid."


class ValidationFailed(BadRequest):
    code = "validation_error"
    default_message = "Some fields are not valid."


class Unauthorized(VaultError):
    status, code, google_status, openai_type = 401, "unauthenticated", "UNAUTHENTICATED", "authentication_error"
    default_message = "Authentication required."


class PaymentRequired(VaultError):
    status, code, google_status, openai_type = 402, "insufficient_balance", "FAILED_PRECONDITION", "insufficient_quota"
    default_message = "Your balance is spent."


class Forbidden(VaultError):
    status, code, google_status, openai_type = 403, "forbidden", "PERMISSION_DENIED", "permission_error"
    default_message = "You are not allowed to do this."


class NotFound(VaultError):
    status, code, google_status, openai_type = 404, "not_found", "NOT_FOUND", "invalid_request_error"
    default_message = "Not found."


class MethodNotAllowed(VaultError):
    status, code, google_status, openai_type = 405, "method_not_allowed", "UNIMPLEMENTED", "invalid_request_error"
    default_message = "Method not allowed."


class RequestTimeout(VaultError):
    status, code, google_status, openai_type = 408, "request_timeout", "DEADLINE_EXCEEDED", "invalid_request_error"
    default_message = "The request body did not arrive in time."


class Conflict(VaultError):
    status, code, google_status, openai_type = 409, "conflict", "ALREADY_EXISTS", "invalid_request_error"
    default_message = "Conflict."


class ResourceUnavailable(VaultError):
    """A file or cache exists, but the upstream key (Google project) holding it is out of the pool."""

    status, code, google_status = 409, "resource_unavailable", "FAILED_PRECONDITION"
    openai_type = "invalid_request_error"
    default_message = "The upstream key holding this resource is disabled."


class Gone(VaultError):
    """A record that existed and can no longer be used (an expired redemption code)."""

    status, code, google_status, openai_type = 410, "gone", "FAILED_PRECONDITION", "invalid_request_error"
    default_message = "Gone."


class LengthRequired(VaultError):
    status, code, google_status, openai_type = 411, "length_required", "INVALID_ARGUMENT", "invalid_request_error"
    default_message = "Send the upload with a Content-Length header."


class PayloadTooLarge(VaultError):
    status, code, google_status, openai_type = 413, "payload_too_large", "INVALID_ARGUMENT", "invalid_request_error"
    default_message = "The request body is too large."


class StorageQuotaExceeded(VaultError):
    status, code, google_status = 413, "storage_quota_exceeded", "RESOURCE_EXHAUSTED"
    openai_type = "invalid_request_error"
    default_message = "This upload would take you past your storage quota."


class UnsupportedMediaType(VaultError):
    status, code, google_status = 415, "unsupported_media_type", "INVALID_ARGUMENT"
    openai_type = "invalid_request_error"
    default_message = "Send the body as JSON with 'Content-Type: application/json'."


class RateLimited(VaultError):
    status, code, google_status, openai_type = 429, "rate_limited", "RESOURCE_EXHAUSTED", "rate_limit_error"
    default_message = "Too many requests."


class NoUpstream(VaultError):
    status, code, google_status, openai_type = 503, "no_upstream", "UNAVAILABLE", "server_error"
    default_message = "No upstream key is available."


class ServiceUnavailable(VaultError):
    status, code, google_status, openai_type = 503, "unavailable", "UNAVAILABLE", "server_error"
    default_message = "The service is unavailable."


class UpstreamFailed(VaultError):
    status, code, google_status, openai_type = 502, "upstream_error", "UNAVAILABLE", "server_error"
    default_message = "The upstream service failed."


class UpstreamTimeout(VaultError):
    status, code, google_status, openai_type = 504, "upstream_timeout", "DEADLINE_EXCEEDED", "server_error"
    default_message = "The upstream service timed out."


ERRORS_BY_STATUS = {
    cls.status: cls
    for cls in (BadRequest, Unauthorized, PaymentRequired, Forbidden, NotFound, MethodNotAllowed, RequestTimeout,
                Conflict, PayloadTooLarge, UnsupportedMediaType, RateLimited, ServiceUnavailable)
}

OPENAI_PATH_PREFIXES = ("/v1/chat/", "/v1/embeddings", "/v1/images/", "/v1beta/openai/")
NATIVE_PATH_PREFIXES = ("/v1beta/", "/v1/", "/upload/")
API_PATH_PREFIXES = ("/auth/", "/api-keys", "/api/", "/admin/api/", "/healthz", "/readyz", "/metrics",
                     "/openapi.json")


def dialect_for(path: str, has_bearer: bool) -> str:
    """Which envelope a caller of `path` expects: `openai`, `google`, `api` or `html`.

    `GET /v1/models[/{id}]` is shared by both SDKs; a Bearer caller (without a Google-style
    key) is the openai SDK. A model method (`/v1/models/{id}:generateContent`) is native.
    """
    if path.startswith(OPENAI_PATH_PREFIXES):
        return "openai"
    if path == "/v1/models" or (path.startswith("/v1/models/") and ":" not in path):
        return "openai" if has_bearer else "google"
    if path.startswith(NATIVE_PATH_PREFIXES):
        return "google"
    if path.startswith(API_PATH_PREFIXES):
        return "api"
    return "html"


def current_dialect() -> str:
    """The dialect of the request being handled (the same Bearer rule as the proxy's door)."""
    bearer = request.headers.get("Authorization", "").lower().startswith("bearer ")
    google_key = request.headers.get("x-goog-api-key") or request.args.get("key")
    return dialect_for(request.path, bearer and not google_key)


def error_body(error: VaultError, dialect: str) -> dict[str, Any]:
    """The JSON envelope for `error` in `dialect`."""
    if dialect == "google":
        body: dict[str, Any] = {"code": error.status, "message": error.message, "status": error.google_status}
        if error.retry_after is not None:
            body["details"] = [{
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": f"{error.retry_after}s",
            }]
        return {"error": body}
    if dialect == "openai":
        return {"error": {"message": error.message, "type": error.openai_type, "code": error.code, "param": None}}
    body = {"code": error.code, "message": error.message}
    if error.fields:
        body["fields"] = error.fields
    return {"error": body}


def render_error(error: VaultError) -> Response:
    """Answer with `error` in the current request's dialect."""
    dialect = current_dialect()
    if dialect == "html":
        response = Response(
            render_template("error.html", error=error), status=error.status, mimetype="text/html"
        )
    else:
        response = jsonify(error_body(error, dialect))
        response.status_code = error.status
    response.headers.update(error.headers)
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, Unauthorized) and dialect == "api":
        response.headers.setdefault("WWW-Authenticate", "Bearer")
    return response


def from_http_exception(exc: HTTPException) -> VaultError:
    """Translate a werkzeug exception (404, 405, 413, CSRF 400, …) into the vocabulary."""
    cls = ERRORS_BY_STATUS.get(exc.code or 500, VaultError)
    message = exc.description if cls is BadRequest else None
    error = cls(message)
    if exc.code == 405 and exc.response is None:
        allowed = getattr(exc, "valid_methods", None)
        if allowed:
            error.headers["Allow"] = ", ".join(allowed)
    return error


def register_error_handlers(app: Flask) -> None:
    """Install the handlers that render every error in the caller's dialect."""

    @app.errorhandler(VaultError)
    def handle_vault_error(error: VaultError) -> Response:
        if error.status >= 500:
            db.session.rollback()
        return render_error(error)

    @app.errorhandler(HTTPException)
    def handle_http_exception(exc: HTTPException) -> Response:
        return render_error(from_http_exception(exc))

    @app.errorhandler(DataError)
    def handle_data_error(exc: DataError) -> Response:
        # The database refused a value (a NUL in text, a number past its column): the caller's
        # input, not an outage.
        db.session.rollback()
        log.warning("database refused a value: %s at %s %s", type(exc.orig).__name__, request.method, request.path)
        return render_error(BadRequest("A value in the request cannot be stored or searched for."))

    @app.errorhandler(SQLAlchemyError)
    def handle_database_error(exc: SQLAlchemyError) -> Response:
        # Fail closed: without the database nothing can be authenticated or metered.
        db.session.rollback()
        log.error("database unavailable: %s at %s %s", type(exc).__name__, request.method, request.path)
        return render_error(ServiceUnavailable("The database is unavailable; retry shortly.", retry_after=5))

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception) -> Response:
        db.session.rollback()
        # Log the type and the frames, not str(exc): exception text may carry a secret.
        log.error("unhandled %s at %s %s\n%s", type(exc).__name__, request.method, request.path,
                  "".join(traceback.format_tb(exc.__traceback__)))
        return render_error(VaultError())
