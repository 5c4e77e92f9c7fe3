"""The signed-in member's XP timeline and dashboard statistics."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field
from quart import Blueprint, g
from quart_schema import security_scheme, tag_blueprint, validate_querystring, validate_response

from service.lib.access import require_member
from service.lib.context import get_rpc
from service.lib.openapi import BEARER, errors
from xpbase.models.stats import DashboardStats, TimelinePeriod

blueprint = Blueprint("stats", __name__)
tag_blueprint(blueprint, ["stats"])


class TimelineQuery(BaseModel):
    """``granularity``: day, week (Monday first) or month; ``periods``: how many, up to now (1-366)."""

    granularity: Literal["day", "week", "month"] = "day"
    periods: int = Field(default=30, ge=1, le=366)


class Timeline(BaseModel):
    """XP per period, oldest first, in the member's time zone."""

    items: list[TimelinePeriod]


class StatsQuery(BaseModel):
    """``period``: day, week or month (the current one, against the one before)."""

    period: Literal["day", "week", "month"] = "week"


@blueprint.get("/v1/me/timeline")
@security_scheme(BEARER)
@require_member
@validate_querystring(TimelineQuery)
@validate_response(Timeline, 200)
@errors(400, 401, 403, 404)
async def get_xp_timeline(query_args: TimelineQuery) -> Timeline:
    """The member's XP per day, week or month.

    Calls `public.xp_timeline(profile_id, granularity, periods)` as the member:
    net XP per period (corrections included), awards that moved XP, and the
    running total at each period's end. Errors: 400, 401 `invalid_token`.
    """
    rows: list[TimelinePeriod] = await get_rpc().call(
        "xp_timeline",
        role="authenticated",
        claims=g.claims,
        profile_id=g.profile_id,
        granularity=query_args.granularity,
        periods=query_args.periods,
    )
    return Timeline(items=rows)


@blueprint.get("/v1/me/stats")
@security_scheme(BEARER)
@require_member
@validate_querystring(StatsQuery)
@validate_response(DashboardStats, 200)
@errors(400, 401, 403, 404)
async def get_dashboard_stats(query_args: StatsQuery) -> DashboardStats:
    """Dashboard numbers: this period's XP against the last, by activity and layer, rank and streak.

    Calls `public.dashboard_stats(profile_id, period)` as the member.
    `change_pct` is null when the previous period had no XP. Errors: 400,
    401 `invalid_token`.
    """
    stats: DashboardStats = await get_rpc().call(
        "dashboard_stats",
        role="authenticated",
        claims=g.claims,
        profile_id=g.profile_id,
        period=query_args.period,
    )
    return stats
