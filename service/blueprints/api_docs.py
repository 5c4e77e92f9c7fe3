"""The Swagger UI's JavaScript and CSS, served from the ``swagger-ui-bundle`` package.

quart-schema renders ``/docs`` and points it at these URLs
(service/lib/openapi.py), so the API browser works with no internet.
"""

from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle
from quart import Blueprint, Response, send_from_directory
from quart_schema import hide

blueprint = Blueprint("api_docs", __name__)

ASSETS = Path(swagger_ui_bundle.swagger_ui_path)
FILES = frozenset({"swagger-ui-bundle.js", "swagger-ui.css"})


@blueprint.get("/docs/assets/<name>")
@hide
async def get_docs_asset(name: str) -> Response:
    """One of the Swagger UI's assets (404 for anything else), cacheable for a day."""
    if name not in FILES:
        return Response("not found", status=404)
    response = await send_from_directory(ASSETS, name)
    response.cache_control.public = True
    response.cache_control.max_age = 86400
    return response
