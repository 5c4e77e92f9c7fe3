"""One error shape for every failure: ``{"error": {"code": str, "message": str}}``.

``APIError(status, code, message)`` is raised by handlers; engine refusals
(``xpbase.errors.DomainError``, from SQLSTATEs) and request validation errors
are turned into the same shape here, and anything unexpected becomes a 500
without internals (tozo's ``APIError``).
"""

from __future__ import annotations

import logging
from typing import Any

from quart import Quart, Response, jsonify
from quart_schema import RequestSchemaValidationError
from werkzeug.exceptions import HTTPException

from xpbase.errors import DomainError

log = logging.getLogger(__name__)


class APIError(Exception):
    """An HTTP error answer: ``status`` (int), machine-readable ``code`` (snake_case), human ``message``."""

    def __init__(
        self, status: int, code: str, message: str = "", *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message or code)
        self.status = status
        self.code = code
        self.message = message or code.replace("_", " ")
        self.headers = headers or {}


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """The JSON body of every error answer."""
    return {"error": {"code": code, "message": message, **extra}}


def _respond(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    response = jsonify(error_body(code, message, **extra))
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def register_error_handlers(app: Quart) -> None:
    """Install the handlers that give every error the one shape."""

    @app.errorhandler(APIError)
    async def handle_api_error(error: APIError) -> Response:
        return _respond(error.status, error.code, error.message, error.headers)

    @app.errorhandler(DomainError)
    async def handle_domain_error(error: DomainError) -> Response:
        return _respond(error.status, error.code, error.message)

    @app.errorhandler(RequestSchemaValidationError)
    async def handle_validation_error(error: RequestSchemaValidationError) -> Response:
        return _respond(400, "invalid_request", str(error.validation_error))

    @app.errorhandler(HTTPException)
    async def handle_http_exception(error: HTTPException) -> Response:
        code = (error.name or "http_error").lower().replace(" ", "_")
        # Keep the exception's own headers but the content type: 405 carries Allow (RFC 9110 15.5.6).
        headers = {key: value for key, value in error.get_headers() if key.lower() != "content-type"}
        return _respond(error.code or 500, code, error.description or code, headers)

    @app.errorhandler(Exception)
    async def handle_unexpected(error: Exception) -> Response:
        log.exception("unhandled error", exc_info=error)
        return _respond(500, "internal_error", "Something went wrong on our side.")
