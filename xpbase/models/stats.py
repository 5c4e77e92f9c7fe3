"""A member's XP timeline and dashboard statistics (supabase/sql/70_timeline.sql), in their time zone."""

from __future__ import annotations

from datetime import date
from typing import Literal
from uuid import UUID

from xpbase.models import Result


class TimelinePeriod(Result):
    """XP of one period [period_start, period_end): net XP, ledger rows that moved XP, total at its end."""

    period_start: date
    period_end: date
    xp: int
    awards: int
    cumulative_xp: int


class ActivityXP(Result):
    """XP and awards of one activity in the period."""

    activity: str
    xp: int
    awards: int


class LayerXP(Result):
    """A layer's total XP and the status it holds."""

    layer: str
    xp: int
    status: str


class DashboardStats(Result):
    """This period's XP against the previous one, totals, rank (all-time, null when hidden) and streak."""

    profile_id: UUID
    period: Literal["day", "week", "month"]
    period_start: date
    period_end: date
    time_zone: str
    xp: int
    previous_xp: int
    change: int
    change_pct: float | None
    direction: Literal["up", "down", "flat"]
    total_xp: int
    level: int
    tier: str | None
    points: int
    rank: int | None
    current_streak: int
    longest_streak: int
    by_activity: list[ActivityXP]
    by_layer: list[LayerXP]


RESULTS = {"xp_timeline": TimelinePeriod, "dashboard_stats": DashboardStats}
