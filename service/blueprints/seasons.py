"""Seasons and their archived results (public)."""

from __future__ import annotations

from pydantic import Field
from quart import Blueprint
from quart_schema import tag_blueprint, validate_querystring, validate_response

from service.lib.access import optional_member
from service.lib.context import caller, get_rpc
from service.lib.openapi import errors
from service.lib.paging import PageQuery
from xpbase.models.seasons import SeasonPage, SeasonResultsPage

blueprint = Blueprint("seasons", __name__)
tag_blueprint(blueprint, ["seasons"])


class SeasonsQuery(PageQuery):
    """``layer``: only this layer's seasons; ``size`` (1-100, default 20) and ``cursor`` page."""

    layer: str | None = Field(default=None, max_length=64)
    size: int = Field(default=20, ge=1, le=100)


@blueprint.get("/v1/seasons")
@validate_querystring(SeasonsQuery)
@validate_response(SeasonPage, 200)
@errors(400)
async def list_seasons(query_args: SeasonsQuery) -> SeasonPage:
    """Seasons, newest first.

    Calls `public.list_seasons(layer, size, cursor)` as anon. Each season has
    its bounds (UTC, `ends_at` exclusive) and a status: upcoming, running,
    ended (not finalized yet) or finalized. Errors: 400 `invalid_argument`.
    """
    page: SeasonPage = await get_rpc().call(
        "list_seasons", role="anon", layer=query_args.layer, size=query_args.size, cursor=query_args.cursor
    )
    return page


@blueprint.get("/v1/seasons/<int(max=9223372036854775807):season_id>/results")
@optional_member
@validate_querystring(PageQuery)
@validate_response(SeasonResultsPage, 200)
@errors(400, 401, 404)
async def list_season_results(season_id: int, query_args: PageQuery) -> SeasonResultsPage:
    """A finished season's final standings and rewards, best first.

    Calls `public.list_season_results(season_id, size, cursor)`. Empty until the
    season is finalized. Members who hide from leaderboards are left out (but
    see themselves when signed in). Errors: 400 `invalid_argument` (unknown
    season, bad cursor).
    """
    page: SeasonResultsPage = await get_rpc().call(
        "list_season_results", **caller(), season_id=season_id, size=query_args.size, cursor=query_args.cursor
    )
    return page
