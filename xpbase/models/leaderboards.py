"""Leaderboard rows and ranks (supabase/sql/60_leaderboards.sql): whole XP; equal XP shares a rank."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from xpbase.models import Result

Board = Literal["all_time", "layer", "season"]

#: public.leaderboard answers pages within the first 10,000 rows of a board (page * page_size, XPBAD past
#: them); public.leaderboard_after reads on by cursor at any depth.
OFFSET_LIMIT_ROWS = 10_000


class LeaderboardEntry(Result):
    """One row of a board: rank, who (id, display name, avatar URL or null), XP on this board, level, tier."""

    rank: int
    profile_id: UUID
    display_name: str
    avatar_url: str | None
    xp: int
    level: int
    tier: str | None


class LeaderboardAfterPage(Result):
    """A page of a board by cursor (``public.leaderboard_after``): rows best first, and ``next``, the cursor
    to pass as ``after`` for the page after this one (opaque text; null on the last page)."""

    items: list[LeaderboardEntry]
    next: str | None


class LeaderboardRank(Result):
    """A member's place as the caller sees it; rank and xp are null when hidden from the caller or absent.

    ``total`` counts the members listed on the board.
    """

    profile_id: UUID
    board: Board
    layer: str | None
    season_id: int | None
    rank: int | None
    xp: int | None
    total: int


RESULTS = {
    "leaderboard": LeaderboardEntry,
    "leaderboard_after": LeaderboardAfterPage,
    "leaderboard_around": LeaderboardEntry,
    "leaderboard_rank": LeaderboardRank,
}
