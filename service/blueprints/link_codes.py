"""Account-link codes: a one-time code the website shows, redeemed in Discord with the bot's ``/link``."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from quart import Blueprint, g
from quart_schema import security_scheme, tag_blueprint, validate_response

from service.lib.access import require_member
from service.lib.context import get_rpc
from service.lib.openapi import BEARER, errors
from xpbase.models.link_codes import LinkCode

blueprint = Blueprint("link_codes", __name__)
tag_blueprint(blueprint, ["auth"])


class LinkCodeOut(BaseModel):
    """A one-time code for the bot's ``/link``: ``code`` (ABCDE-FGHJK), ``expires_at`` (UTC), lifetime."""

    code: str
    expires_at: datetime
    ttl_seconds: int


@blueprint.post("/v1/auth/link-codes")
@security_scheme(BEARER)
@require_member
@validate_response(LinkCodeOut, 201)
@errors(401, 403, 404, 429)
async def post_link_code() -> tuple[LinkCodeOut, int]:
    """A one-time code that links the caller's Discord account through the bot's ``/link <code>``.

    Calls ``public.create_link_code()`` as the caller. Valid 10 minutes by
    default; a new code replaces the caller's earlier unused ones. Errors: 401
    ``invalid_token``; 404 ``unknown_profile`` when the token's profile is gone; 429
    ``rate_limited`` (at most 5 codes per hour by default).
    """
    code: LinkCode = await get_rpc().call("create_link_code", role="authenticated", claims=g.claims)
    return LinkCodeOut.model_validate(code.model_dump()), 201
