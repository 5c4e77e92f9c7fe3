"""Cross-origin access for a separate browser frontend (quart-cors), from ``XPBASE_CORS_ORIGINS``.

Only the listed origins get ``Access-Control-Allow-Origin`` (their own
origin echoed back, never ``*``) and ``Access-Control-Allow-Credentials:
true``, so a frontend there can send the ``Authorization`` header or the
session cookies; any other origin gets no CORS headers and the browser
keeps the answer from it. With no origins listed nothing is added.
Preflights (``OPTIONS`` with ``Access-Control-Request-Method``) are
answered by quart-cors for every route.
"""

from __future__ import annotations

from quart import Quart
from quart_cors import cors

from xpbase.settings import Settings

ALLOW_HEADERS = ["Authorization", "Content-Type", "If-None-Match"]
EXPOSE_HEADERS = ["ETag", "Cache-Control", "WWW-Authenticate"]
ALLOW_METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"]
MAX_AGE_SECONDS = 600


def enable_cors(app: Quart, settings: Settings) -> Quart:
    """Answer cross-origin requests from ``settings.cors_origins`` (with credentials); a no-op when empty."""
    if not settings.cors_origins:
        return app
    return cors(
        app,
        allow_origin=list(settings.cors_origins),
        allow_credentials=True,
        allow_headers=ALLOW_HEADERS,
        allow_methods=ALLOW_METHODS,
        expose_headers=EXPOSE_HEADERS,
        max_age=MAX_AGE_SECONDS,
    )
