"""The public web pages: the leaderboard at ``/`` and a member's page at ``/u/<id>``.

Server-rendered Jinja templates (service/templates/) and one stylesheet (service/static/), no JavaScript
and nothing loaded from elsewhere. Every page reads the database as ``anon`` (a visitor without a token)
through the same SQL functions as the API (``public.leaderboard``, ``leaderboard_scope``,
``profile_card``), so leaderboard privacy holds here exactly as in SQL: members who hide themselves are
absent from the board and their page is a 404.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode
from uuid import UUID

from pydantic import BaseModel, Field, ValidationError
from quart import Blueprint, Response, make_response, render_template, request
from quart_schema import hide

from service.lib.context import get_db, get_rpc
from xpbase.errors import DomainError
from xpbase.models import Result
from xpbase.models.badges import ProfileBadges
from xpbase.models.leaderboards import OFFSET_LIMIT_ROWS
from xpbase.models.profiles import ProfileCard

SERVICE_DIR = Path(__file__).resolve().parent.parent
blueprint = Blueprint(
    "pages",
    __name__,
    template_folder=str(SERVICE_DIR / "templates"),
    static_folder=str(SERVICE_DIR / "static"),
    static_url_path="/assets",
)
ANON = {"role": "anon"}
PAGE_SIZE = 50
#: No script, no frames, nothing from other origins except member avatars (https images providers host).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' https: data:; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class BoardRow(Result):
    """A row of ``public.leaderboard`` (its declared row type ``public.leaderboard_entry``)."""

    rank: int
    profile_id: UUID
    display_name: str
    avatar_url: str | None
    xp: int
    level: int
    tier: str | None


class BoardScope(Result):
    """A row of ``public.leaderboard_scope``: the board the arguments name, defaults filled in."""

    board_name: str
    layer_slug: str | None
    season: int | None


class NamedRow(Result):
    """``slug, name`` of a layer or a tier (public configuration tables)."""

    slug: str
    name: str


class SeasonRow(Result):
    """A season as anyone may read it (``public.seasons``)."""

    id: int
    layer_slug: str
    name: str
    starts_at: datetime
    ends_at: datetime
    finalized_at: datetime | None


class BoardQuery(BaseModel):
    """The board's query string; the SQL functions validate the values (XPBAD shows as a 400 page).

    ``server`` (a Discord server id) narrows the all-time board to that server's members
    (``public.guild_leaderboard``), as ``/leaderboard`` does in the server.
    """

    board: Literal["all_time", "layer", "season"] = "all_time"
    layer: str | None = None
    season: int | None = None
    server: str | None = Field(default=None, pattern=r"^[0-9]{1,20}$")
    page: int = 1


def initials(name: str) -> str:
    """Up to two initials of a display name, for the generated avatar."""
    parts = [p for p in name.replace("_", " ").replace("-", " ").split() if p[:1].isalnum()]
    letters = "".join(p[0] for p in parts[:2]) or name[:1] or "?"
    return letters.upper()


def avatar_hue(profile_id: UUID | str) -> int:
    """A stable hue (0-359) per member, so generated avatars keep their colour."""
    return int(hashlib.sha256(str(profile_id).encode()).hexdigest()[:4], 16) % 360


def ago(moment: datetime, now: datetime | None = None) -> str:
    """``moment`` as "5 min ago", "3 h ago", "2 d ago" or a date (UTC)."""
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    if seconds < 30 * 86400:
        return f"{seconds // 86400} d ago"
    return moment.astimezone(UTC).strftime("%Y-%m-%d")


@blueprint.app_template_filter("thousands")
def thousands(value: int) -> str:
    """12345 as ``12,345``."""
    return f"{value:,}"


@blueprint.app_context_processor
def helpers() -> dict[str, Any]:
    return {"initials": initials, "avatar_hue": avatar_hue, "ago": ago}


async def _page(template: str, status: int = 200, *, max_age: int = 5, **context: Any) -> Response:
    response = await make_response(await render_template(template, **context), status)
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = f"public, max-age={max_age}" if status == 200 else "no-store"
    return response


def _board_url(**params: Any) -> str:
    query = {k: v for k, v in params.items() if v not in (None, "", "all_time", 1)}
    return "/" + (f"?{urlencode(query)}" if query else "")


@blueprint.get("/")
@hide
async def get_board_page() -> Response:
    """The leaderboard page: all-time, ``?board=layer&layer=reality``, ``?board=season[&season=ID]`` or one
    Discord server's members ``?server=ID``."""
    try:
        query = BoardQuery.model_validate(request.args.to_dict())
    except ValidationError:
        return await _page("error.html", 400, title="Not a board", message="That board does not exist.")
    db = get_db()
    try:
        async with db.as_anon() as conn:
            scope_row = await conn.fetchrow(
                "select * from public.leaderboard_scope($1, $2, $3)", query.board, query.layer, query.season
            )
            scope = BoardScope.model_validate(dict(scope_row))
            if query.server is not None:
                if scope.board_name != "all_time":
                    return await _page(
                        "error.html", 400, title="Not a board", message="Server boards are all-time boards."
                    )
                board_sql = "select * from public.guild_leaderboard($1, $2, $3)"
                board_args: tuple[Any, ...] = (query.server, PAGE_SIZE + 1, query.page)
            else:
                board_sql = "select * from public.leaderboard($1, $2, $3, $4, $5)"
                board_args = (query.board, scope.layer_slug, scope.season, PAGE_SIZE + 1, query.page)
            rows = [BoardRow.model_validate(dict(r)) for r in await conn.fetch(board_sql, *board_args)]
            layers = [
                NamedRow.model_validate(dict(r))
                for r in await conn.fetch("select slug, name from public.layers order by position, slug")
            ]
            tiers = {r["slug"]: r["name"] for r in await conn.fetch("select slug, name from public.tiers")}
            seasons = [
                SeasonRow.model_validate(dict(r))
                for r in await conn.fetch(
                    "select id, layer_slug, name, starts_at, ends_at, finalized_at from public.seasons"
                    " where starts_at <= now() order by starts_at desc, layer_slug limit 24"
                )
            ]
    except DomainError as exc:
        if exc.error.sqlstate != "XPBAD":
            raise
        return await _page("error.html", 400, title="Not a board", message=exc.message)
    # public.leaderboard and public.guild_leaderboard answer pages within the first 10,000 rows of a board.
    has_next = len(rows) > PAGE_SIZE and (query.page + 1) * (PAGE_SIZE + 1) <= OFFSET_LIMIT_ROWS
    rows = rows[:PAGE_SIZE]
    season = next((s for s in seasons if s.id == scope.season), None)
    layer_names = {layer.slug: layer.name for layer in layers}
    if query.server is not None:
        heading = f"Server {query.server}"
    elif scope.board_name == "all_time":
        heading = "All-time"
    elif scope.board_name == "layer":
        heading = layer_names.get(scope.layer_slug or "", scope.layer_slug or "")
    else:
        heading = f"{layer_names.get(scope.layer_slug or '', scope.layer_slug)} season" + (
            f" · {season.name}" if season else ""
        )
    return await _page(
        "board.html",
        rows=rows,
        tiers=tiers,
        layers=layers,
        seasons=seasons,
        scope=scope,
        season=season,
        heading=heading,
        page=query.page,
        server=query.server,
        prev_url=_board_url(
            board=scope.board_name,
            layer=query.layer,
            season=query.season,
            server=query.server,
            page=query.page - 1,
        )
        if query.page > 1
        else None,
        next_url=_board_url(
            board=scope.board_name,
            layer=query.layer,
            season=query.season,
            server=query.server,
            page=query.page + 1,
        )
        if has_next
        else None,
        board_url=_board_url,
        empty_everywhere=not rows
        and query.page == 1
        and scope.board_name == "all_time"
        and query.server is None,
    )


@blueprint.get("/u/<profile_id>")
@hide
async def get_member_page(profile_id: str) -> Response:
    """A member's page: level progress, layers, this season, badges, recent activity.

    The public view (``profile_card`` as anon): 404 unless the member is on the boards and their
    ``profile_visibility`` is public; members and private profiles are seen through the API and the bot.
    """
    try:
        pid = UUID(profile_id)
    except ValueError:
        pid = None
    if pid is None:
        return await _page("error.html", 404, title="No such member", message="That member is not here.")
    try:
        card: ProfileCard = await get_rpc().call("profile_card", role="anon", claims=ANON, profile_id=pid)
    except DomainError as exc:
        if exc.error.sqlstate != "XPPRF":
            raise
        return await _page(
            "error.html",
            404,
            title="No such member",
            message="That member is not here, or keeps their profile private.",
        )
    badges: ProfileBadges = await get_rpc().call("profile_badges", role="anon", claims=ANON, profile_id=pid)
    return await _page("member.html", card=card, badges=badges)
