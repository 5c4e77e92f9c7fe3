"""``/docs``: the Swagger UI, with its JavaScript and CSS served by this service (no internet needed).

The assets come from the ``swagger-ui-py`` package, which ships Swagger UI
5 (the OpenAPI document is 3.1; Swagger UI 4 refuses anything but 3.0 and
2.0). The page is our own template rather than quart-schema's, whose
template asks for ``SwaggerUIBundle.SwaggerUIStandalonePreset``, a preset the
bundle does not carry; ours uses the bundle's own ``apis`` preset, reads
``/openapi.json`` and asks no validator service anything (``validatorUrl:
null``), so the page works offline (tests/web/test_docs.py checks it in
Chromium with every other host blocked).
"""

from __future__ import annotations

from pathlib import Path

import swagger_ui
from quart import Blueprint, Response, render_template_string, send_from_directory, url_for
from quart_schema import hide

blueprint = Blueprint("api_docs", __name__)

ASSETS = Path(swagger_ui.__file__).parent / "static"
FILES = frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"})

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{{ title }}</title>
  <link rel="stylesheet" href="{{ url_for('api_docs.get_docs_asset', name='swagger-ui.css') }}">
  <link rel="icon" href="{{ url_for('api_docs.get_docs_asset', name='favicon-32x32.png') }}">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{{ url_for('api_docs.get_docs_asset', name='swagger-ui-bundle.js') }}"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: {{ openapi_url | tojson }},
      dom_id: "#swagger-ui",
      deepLinking: true,
      displayOperationId: true,
      showExtensions: true,
      showCommonExtensions: true,
      validatorUrl: null,
      presets: [SwaggerUIBundle.presets.apis],
      layout: "BaseLayout"
    });
  </script>
</body>
</html>
"""


@blueprint.get("/docs")
@hide
async def get_docs() -> str:
    """The Swagger UI page for ``/openapi.json``."""
    return await render_template_string(PAGE, title="xpbase API", openapi_url=url_for("openapi"))


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
