"""Query models and headers shared by the list and board routes: cursor paging, public caching."""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, Field
from quart import Response, request

PUBLIC_MAX_AGE_SECONDS = 15


class PageQuery(BaseModel):
    """``size``: items per page (1-100); ``cursor``: the ``next_cursor`` of the previous page (opaque)."""

    size: int = Field(default=50, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=100)


async def cache_public(response: Response, *, personal: bool) -> Response:
    """Add a strong ETag of the body and Cache-Control; answer 304 when ``If-None-Match`` matches.

    Anonymous answers are ``public, max-age=15`` (any cache may keep them a
    little); answers for a signed-in caller can differ (a hidden member sees
    themself), so they are ``private, no-cache``. ``Vary`` names the headers
    that change the answer.
    """
    etag = hashlib.sha256(await response.get_data()).hexdigest()[:32]
    response.set_etag(etag)
    response.vary.update(("Authorization", "Cookie"))
    if personal:
        response.cache_control.private = True
        response.cache_control.no_cache = True
    else:
        response.cache_control.public = True
        response.cache_control.max_age = PUBLIC_MAX_AGE_SECONDS
    if request.if_none_match.contains(etag):
        response.status_code = 304
        response.set_data(b"")
    return response
