"""Leaderboards: all-time, per layer and per season; the top, a member's rank, the members around them.

Public: anyone may read them (``public.leaderboard*`` run as anon); a
signed-in caller who hides from leaderboards still sees themself. Answers
carry an ``ETag`` and ``Cache-Control`` (public for anonymous callers), and
``If-None-Match`` gets a 304.
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field
from quart import Blueprint, ResponseReturnValue, after_this_request, g
from quart_schema import tag_blueprint, validate_querystring, validate_response

from service.lib.access import optional_member
from service.lib.api_error import APIError
from service.lib.context import caller, get_rpc
from service.lib.openapi import BIGINT_MAX, errors
from service.lib.paging import cache_public
from xpbase.models.leaderboards import (
    OFFSET_LIMIT_ROWS,
    Board,
    LeaderboardAfterPage,
    LeaderboardEntry,
    LeaderboardRank,
)

blueprint = Blueprint("leaderboards", __name__)
tag_blueprint(blueprint, ["leaderboards"])

BOARD = "<any(all_time, layer, season):board>"


class BoardQuery(BaseModel):
    """Which board: ``layer`` (layer and season boards; default the default layer) and ``season_id``
    (season board; default the layer's running season). ``size`` rows per page (1-100); ``after`` the
    previous page's ``next`` (by cursor: the same cost at any depth), or ``cursor`` the previous page's
    ``next_cursor`` (a page number, within the first 10,000 rows of a board)."""

    layer: str | None = Field(default=None, max_length=64)
    season_id: int | None = Field(default=None, ge=1, le=BIGINT_MAX)
    size: int = Field(default=50, ge=1, le=100)
    #: Opaque to clients; public.leaderboard_after reads it strictly (anything it did not write is a 400).
    after: str | None = Field(default=None, max_length=80, pattern=r"^[0-9a-f.-]+$")
    cursor: str | None = Field(default=None, pattern=r"^[1-9][0-9]{0,6}$")
    #: A Discord server (guild) id: the all-time board of that server's members only.
    server: str | None = Field(default=None, pattern=r"^[0-9]{1,20}$")


class ScopeQuery(BaseModel):
    """Which board: ``layer`` and ``season_id`` as for the top of the board."""

    layer: str | None = Field(default=None, max_length=64)
    season_id: int | None = Field(default=None, ge=1, le=BIGINT_MAX)


class AroundQuery(ScopeQuery):
    """``radius``: how many members above and below (0-50)."""

    radius: int = Field(default=5, ge=0, le=50)


class LeaderboardPage(BaseModel):
    """A page of a board, best first. ``next``: pass it as ``after`` for the next page (null on the last
    page, and when paging by ``cursor`` or ``server``). ``next_cursor``: the next page number for
    ``cursor`` (null on the last page, past the first 10,000 rows, and when paging by ``after``)."""

    board: Board
    items: list[LeaderboardEntry]
    next: str | None
    next_cursor: str | None


class Around(BaseModel):
    """The members around one member, best first (empty when the member is hidden from the caller)."""

    board: Board
    items: list[LeaderboardEntry]


def _cached(personal: bool) -> None:
    @after_this_request
    async def add_headers(response):  # type: ignore[no-untyped-def]
        if response.status_code == 200:
            return await cache_public(response, personal=personal)
        return response


@blueprint.get(f"/v1/leaderboards/{BOARD}")
@optional_member
@validate_querystring(BoardQuery)
@validate_response(LeaderboardPage, 200)
@errors(400, 401, 404)
async def get_leaderboard(
    board: Literal["all_time", "layer", "season"], query_args: BoardQuery
) -> LeaderboardPage:
    """A page of a leaderboard, best first.

    Calls `public.leaderboard_after(board, layer, season_id, page_size, after)`:
    without `cursor`, pages go by cursor (`after` = the previous page's `next`),
    at the cost of one page at any depth. `cursor` (a page number, the previous
    page's `next_cursor`) calls `public.leaderboard(..., page)` instead, within
    the first 10,000 rows (OFFSET_LIMIT_ROWS). Equal XP shares a rank, across
    pages too; among equals whoever reached the score first is listed first.
    Members who hide from leaderboards are left out (except for themselves).
    `?server=<Discord guild id>` (all_time only) lists that server's members
    (`public.guild_leaderboard`, by page number, also within the first 10,000
    rows), as the bot's `/leaderboard` does in a server. Errors: 400
    `invalid_argument` (unknown layer or season, an `after` that is not a
    cursor, a page past the first 10,000 rows),
    `invalid_request` (`after` with `cursor` or `server`).
    """
    size = query_args.size
    if query_args.after is not None and (query_args.cursor is not None or query_args.server is not None):
        raise APIError(400, "invalid_request", "after pages by cursor: leave out cursor and server")
    page = int(query_args.cursor or 1)
    rows: list[LeaderboardEntry]
    next_page = None
    if query_args.server is not None or query_args.cursor is not None:
        if query_args.server is not None:
            if board != "all_time":
                raise APIError(400, "invalid_request", "server filters the all_time board only")
            rows = await get_rpc().call(
                "guild_leaderboard", **caller(), guild_id=query_args.server, page_size=size, page=page
            )
        else:
            rows = await get_rpc().call(
                "leaderboard",
                **caller(),
                board=board,
                layer=query_args.layer,
                season_id=query_args.season_id,
                page_size=size,
                page=page,
            )
        if len(rows) == size and (page + 1) * size <= OFFSET_LIMIT_ROWS:
            next_page = str(page + 1)
        _cached(personal=hasattr(g, "claims"))
        return LeaderboardPage(board=board, items=rows, next=None, next_cursor=next_page)
    found: LeaderboardAfterPage = await get_rpc().call(
        "leaderboard_after",
        **caller(),
        board=board,
        layer=query_args.layer,
        season_id=query_args.season_id,
        page_size=size,
        after=query_args.after,
    )
    # The first page is page 1 either way: a client that pages by number goes on with cursor=2.
    if query_args.after is None and found.next is not None and 2 * size <= OFFSET_LIMIT_ROWS:
        next_page = "2"
    _cached(personal=hasattr(g, "claims"))
    return LeaderboardPage(board=board, items=found.items, next=found.next, next_cursor=next_page)


@blueprint.get(f"/v1/leaderboards/{BOARD}/ranks/<uuid:profile_id>")
@optional_member
@validate_querystring(ScopeQuery)
@validate_response(LeaderboardRank, 200)
@errors(400, 401, 404)
async def get_leaderboard_rank(
    board: Literal["all_time", "layer", "season"], profile_id: UUID, query_args: ScopeQuery
) -> LeaderboardRank:
    """A member's rank on a leaderboard.

    Calls `public.leaderboard_rank`. `rank` and `xp` are null when the member
    hides from leaderboards (and is not the caller) or has no XP on the board;
    `total` counts the members listed. Errors: 400 `invalid_argument`.
    """
    rank: LeaderboardRank = await get_rpc().call(
        "leaderboard_rank",
        **caller(),
        profile_id=profile_id,
        board=board,
        layer=query_args.layer,
        season_id=query_args.season_id,
    )
    _cached(personal=hasattr(g, "claims"))
    return rank


@blueprint.get(f"/v1/leaderboards/{BOARD}/around/<uuid:profile_id>")
@optional_member
@validate_querystring(AroundQuery)
@validate_response(Around, 200)
@errors(400, 401, 404)
async def get_leaderboard_around(
    board: Literal["all_time", "layer", "season"], profile_id: UUID, query_args: AroundQuery
) -> ResponseReturnValue:
    """The members just above and below a member ("around me").

    Calls `public.leaderboard_around`: up to `radius` members on each side, with
    their ranks. Empty when the member is hidden from the caller or not on the
    board. Errors: 400 `invalid_argument`.
    """
    rows: list[LeaderboardEntry] = await get_rpc().call(
        "leaderboard_around",
        **caller(),
        profile_id=profile_id,
        board=board,
        layer=query_args.layer,
        season_id=query_args.season_id,
        radius=query_args.radius,
    )
    _cached(personal=hasattr(g, "claims"))
    return Around(board=board, items=rows)
