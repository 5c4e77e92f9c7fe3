"""The OpenAPI document: operation ids, the error schema on every failure, security, servers, tags.

quart-schema builds the document from the routes' models; this provider
adds what a client generator needs on top:

- ``operationId``: the handler's name in camelCase (``get_leaderboard`` ->
  ``getLeaderboard``), or ``quart_schema.operation_id``'s override.
- Every 4xx/5xx a route names with :func:`errors` (and 500, which any
  route can answer) as an :class:`ErrorBody` response.
- ``security: []`` on routes that declare none (public routes).
- ``servers`` from ``XPBASE_PUBLIC_URL`` (default ``http://HOST:PORT``).

The Swagger UI at ``/docs`` loads its JavaScript and CSS from this service
(Swagger UI 5 from the ``swagger-ui-py`` package, served by service/blueprints/api_docs.py),
so it works with no internet.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar

from pydantic import BaseModel
from quart import Quart
from quart_schema import Info, OpenAPIProvider, QuartSchema
from quart_schema.openapi import QUART_SCHEMA_OPERATION_ID_ATTRIBUTE
from werkzeug.routing.converters import IntegerConverter

from service.lib.access import ACCESS_COOKIE
from xpbase import __version__
from xpbase.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])
ERRORS_ATTRIBUTE = "_xpbase_error_statuses"
BODY_ATTRIBUTE = "_xpbase_body_responses"
BEARER = [{"bearer": []}, {"cookie": []}]
"""The security requirement of routes that need a signed-in member (header or cookie)."""

DESCRIPTION = """\
XP, levels, tiers, two layers, seasons, streaks and leaderboards over HTTP.

Every handler calls exactly one SQL function as the caller's role (anon, or
`authenticated` with the verified token's claims), so this API, the Discord
bot and supabase-js get the same rules, privacy and errors. Lists are paged
by an opaque `cursor` (pass the answer's `next_cursor`; null on the last
page); a leaderboard also by `after` (pass the answer's `next`), which costs
one page at any depth. Every error has the body `{"error": {"code", "message"}}`.
"""

TAGS = [
    {"name": "health", "description": "Liveness and readiness."},
    {"name": "auth", "description": "Sign-in with OAuth providers, sessions, account-link codes."},
    {"name": "profiles", "description": "The signed-in member's own profile."},
    {"name": "ledger", "description": "A member's XP history with receipts."},
    {"name": "leaderboards", "description": "All-time, per-layer and per-season boards: top, rank, around."},
    {"name": "seasons", "description": "Seasons and their archived final standings."},
    {"name": "streaks", "description": "Daily check-in and streak status."},
    {"name": "stats", "description": "XP timeline and dashboard statistics."},
    {"name": "levels", "description": "The level curve, tiers and what they unlock, layers."},
    {"name": "notifications", "description": "A member's notifications: list and mark read."},
    {"name": "admin", "description": "Corrections by admins: adjust XP, set a level, reset XP."},
    {"name": "reviews", "description": "Resume reviews: matching and availability (admins), calendars."},
]


class ErrorDetail(BaseModel):
    """What went wrong: a machine-readable ``code`` (the README's error table) and a message."""

    code: str
    message: str


class ErrorBody(BaseModel):
    """The body of every error answer."""

    error: ErrorDetail


def errors(*statuses: int) -> Callable[[F], F]:
    """Route decorator: the error statuses (4xx/5xx) the route can answer, documented with ErrorBody."""

    def decorator(func: F) -> F:
        setattr(func, ERRORS_ATTRIBUTE, (*getattr(func, ERRORS_ATTRIBUTE, ()), *statuses))
        return func

    return decorator


def body(mimetype: str, description: str, status: int = 200) -> Callable[[F], F]:
    """Route decorator: a success answer that is not JSON (an .ics calendar), documented as text of
    ``mimetype``."""

    def decorator(func: F) -> F:
        setattr(func, BODY_ATTRIBUTE, (*getattr(func, BODY_ATTRIBUTE, ()), (status, mimetype, description)))
        return func

    return decorator


def camel_case(name: str) -> str:
    """``get_leaderboard`` -> ``getLeaderboard``."""
    first, *rest = name.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


BIGINT_MAX = 2**63 - 1
"""The largest Postgres ``bigint`` (every row id in xpbase is a bigint identity)."""


class RowId(IntegerConverter):
    """Werkzeug's ``int`` converter bounded to a row id, 1 to `BIGINT_MAX`: installed as ``int`` on the app,
    so ``/v1/claims/<int:claim_id>`` answers 404 for 0 or 2**70 instead of passing a number Postgres
    cannot hold (the URL matches no route, as a negative number already did not)."""

    def __init__(
        self, url_map: Any, fixed_digits: int = 0, min: int | None = 1, max: int | None = BIGINT_MAX
    ) -> None:
        super().__init__(url_map, fixed_digits=fixed_digits, min=min, max=max)


class XPBaseOpenAPI(OpenAPIProvider):
    """quart-schema's provider with xpbase's operation ids, error responses and public-route security."""

    def operation_id(self, method: str, path: str, func: Callable[..., Any]) -> str | None:
        return getattr(func, QUART_SCHEMA_OPERATION_ID_ATTRIBUTE, None) or camel_case(func.__name__)

    def build_paths(self, rule: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        if rule.endpoint == "static" or rule.endpoint.endswith(".static"):
            return {}, {}  # static files (the web pages' stylesheet) are not API operations
        paths, components = super().build_paths(rule)
        func = self._app.view_functions[rule.endpoint]
        statuses = sorted({*getattr(func, ERRORS_ATTRIBUTE, ()), 500})
        for operations in paths.values():
            for operation in operations.values():
                operation.setdefault("security", [])
                # A signed-in route verifies the token: in Supabase Auth mode that may read the JWKS,
                # and an unreadable JWKS is 502 provider_unavailable (service/lib/access.py).
                signed_in = [502] if operation["security"] else []
                responses = operation["responses"]
                for status, mimetype, description in getattr(func, BODY_ATTRIBUTE, ()):
                    responses[status] = {
                        "description": description,
                        "content": {mimetype: {"schema": {"type": "string"}}},
                    }
                if not any(200 <= int(code) < 400 for code in responses):
                    responses[204] = {"description": "Done; no body."}
                for status in sorted({*statuses, *signed_in}):
                    responses[status] = {
                        "description": HTTPStatus(status).phrase,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}
                        },
                    }
        return paths, components

    def build_path_parameter(self, name: str, converter: Any) -> dict[str, Any]:
        """quart-schema's path parameter, with an ``int`` converter's range (see `RowId`) in the schema."""
        parameter = super().build_path_parameter(name, converter)
        if isinstance(converter, IntegerConverter):
            if converter.min is not None:
                parameter["schema"]["minimum"] = converter.min
            if converter.max is not None:
                parameter["schema"]["maximum"] = converter.max
        return parameter

    def build_querystring_parameters(self, model: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """quart-schema's query parameters, with ``required`` set on the model's required fields (it looks
        for ``required`` inside each property's schema, where pydantic never puts it)."""
        parameters, definitions = super().build_querystring_parameters(model)
        fields = getattr(model, "model_fields", {})
        required = {field.alias or name for name, field in fields.items() if field.is_required()}
        for parameter in parameters:
            if parameter["name"] in required:
                parameter["required"] = True
        return parameters, definitions

    def schema(self) -> dict[str, Any]:
        document = super().schema()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        error_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(error_schema.pop("$defs", {}))
        schemas["ErrorBody"] = error_schema
        return document


def configure_openapi(app: Quart, settings: Settings) -> QuartSchema:
    """Install quart-schema on ``app`` with xpbase's document settings (``/docs``: blueprints/api_docs.py),
    and `RowId` as the ``int`` converter (before any blueprint registers a route)."""
    app.url_map.converters["int"] = RowId
    public_url = settings.public_url or f"http://{settings.host}:{settings.port}"
    return QuartSchema(
        app,
        info=Info(
            title="xpbase",
            version=__version__,
            description=DESCRIPTION,
            license={"name": "MIT", "identifier": "MIT"},  # type: ignore[arg-type]
        ),
        tags=TAGS,  # type: ignore[arg-type]
        servers=[{"url": public_url.rstrip("/"), "description": "This service"}],  # type: ignore[list-item]
        security_schemes={
            "bearer": {"type": "http", "scheme": "bearer", "bearer_format": "JWT"},
            "cookie": {"type": "apiKey", "in_": "cookie", "name": ACCESS_COOKIE},
        },
        swagger_ui_path=None,  # /docs is service/blueprints/api_docs.py (Swagger UI 5, offline)
        redoc_ui_path=None,
        scalar_ui_path=None,
        openapi_provider_class=XPBaseOpenAPI,
    )
