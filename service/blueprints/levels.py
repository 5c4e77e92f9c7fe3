"""The level guide: the curve, tiers and what they unlock, layers (public)."""

from __future__ import annotations

from quart import Blueprint, ResponseReturnValue, after_this_request
from quart_schema import tag_blueprint, validate_response

from service.lib.context import get_rpc
from service.lib.paging import cache_public
from xpbase.models.levels import LevelGuide

blueprint = Blueprint("levels", __name__)
tag_blueprint(blueprint, ["levels"])


@blueprint.get("/v1/levels")
@validate_response(LevelGuide, 200)
async def get_level_guide() -> ResponseReturnValue:
    """How levels and tiers work.

    Calls `public.level_guide()` as anon: the XP each level starts at, the
    tiers with their level ranges and unlocks, and the layers with their
    status ladders. Cacheable (ETag).
    """
    guide: LevelGuide = await get_rpc().call("level_guide", role="anon")

    @after_this_request
    async def add_headers(response):  # type: ignore[no-untyped-def]
        return await cache_public(response, personal=False) if response.status_code == 200 else response

    return guide
