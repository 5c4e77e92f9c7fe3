"""Daily check-in and streak status (supabase/sql/50_streaks.sql). Days are the member's local days."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from xpbase.models import Result
from xpbase.models.engine import AwardReceipt


class StreakStatus(Result):
    """A streak as a check-in now would find it; ``day_ends_at`` and ``next_check_in_at`` are UTC."""

    profile_id: UUID
    current_streak: int
    longest_streak: int
    freezes_held: int
    max_freezes_held: int
    missed_days: int
    done_today: bool
    last_check_in_date: date | None
    local_date: date
    time_zone: str
    day_ends_at: datetime
    next_check_in_at: datetime
    next_check_in_xp: int
    rule: str


class Milestone(Result):
    """A streak milestone reached by this check-in: its length in days, whether it earned a freeze."""

    days: int
    freeze_earned: bool


class CheckIn(StreakStatus):
    """A check-in's receipt: the streak after it; ``xp`` is award_xp's receipt (null when already done today).

    ``granted`` is the XP credited; ``checked_in`` is false when today was
    already done (nothing changed).
    """

    checked_in: bool
    streak: int
    freezes_used: int
    freeze_earned: bool
    streak_restarted: bool
    granted: int
    xp: AwardReceipt | None
    milestone: Milestone | None


RESULTS = {
    "check_in": CheckIn,
    "service_role_check_in": CheckIn,
    "streak_status": StreakStatus,
    "service_role_streak_status": StreakStatus,
}
