"""Seasons and their archived final standings (supabase/sql/45_season_finalize.sql). Times are UTC."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from xpbase.models import Result


class SeasonInfo(Result):
    """A season of a layer: [starts_at, ends_at), finalized_at once its standings are frozen."""

    id: int
    layer: str
    name: str
    starts_at: datetime
    ends_at: datetime
    finalized_at: datetime | None


class Season(SeasonInfo):
    """A season with its status now: upcoming, running, ended (not yet finalized) or finalized."""

    status: Literal["upcoming", "running", "ended", "finalized"]


class SeasonPage(Result):
    """A page of seasons, newest first."""

    items: list[Season]
    next_cursor: str | None


class SeasonResult(Result):
    """A member's final standing in a season and the rewards it brought (XP, points, a title or null)."""

    rank: int
    profile_id: UUID
    display_name: str
    avatar_url: str | None
    xp: int
    reward_xp: int
    reward_points: int
    title: str | None


class SeasonResultsPage(Result):
    """A page of a season's archived results, best first."""

    season: SeasonInfo
    items: list[SeasonResult]
    next_cursor: str | None


class FinalizedSeason(Result):
    """A season finalize_seasons froze: members with XP in it (participants) and how many got a reward."""

    season_id: int
    layer: str
    name: str
    participants: int
    rewarded: int


class Finalized(Result):
    """What one finalize_seasons run froze (``count`` seasons, none when nothing had ended), as of ``at``."""

    finalized: list[FinalizedSeason]
    count: int
    at: datetime


RESULTS = {
    "finalize_seasons": Finalized,
    "list_seasons": SeasonPage,
    "list_season_results": SeasonResultsPage,
}
