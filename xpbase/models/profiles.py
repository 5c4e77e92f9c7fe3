"""Profiles as others see them: ``public.profile_card`` (supabase/sql/65_profile_card.sql), and the
role change of ``public.service_role_grant_admin`` (35_admin.sql).

XP and amounts are whole XP; times are aware UTC datetimes.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from xpbase.models import Result


class LevelProgress(Result):
    """Where a member stands between two levels; ``next_*`` and ``xp_needed`` are None at the top."""

    level_xp: int
    """Total XP at which the member's level starts."""
    next_level: int | None
    next_level_xp: int | None
    """Total XP at which the next level starts."""
    xp_into_level: int
    """XP earned since the level started."""
    xp_needed: int | None
    """XP from this level's start to the next level's (the bar's length)."""
    xp_to_next_level: int | None
    """XP still missing to the next level."""

    @property
    def fraction(self) -> float:
        """How full the bar is, 0.0 to 1.0 (1.0 at the top of the curve)."""
        if not self.xp_needed:
            return 1.0
        return max(0.0, min(1.0, self.xp_into_level / self.xp_needed))


class CardLayer(Result):
    """XP and status in one layer (every layer is listed, 0 XP when none was earned there)."""

    slug: str
    name: str
    xp: int
    status: str | None
    status_name: str | None


class CardSeason(Result):
    """The member's score in a season running now; ``rank`` None when they have no XP in it."""

    season_id: int
    layer: str
    name: str
    starts_at: datetime
    ends_at: datetime
    xp: int
    rank: int | None


class CardActivity(Result):
    """One positive award of the member (the public part of a ledger row)."""

    activity: str
    activity_name: str
    layer: str
    amount: int
    occurred_at: datetime


class ProfileCard(Result):
    """``public.profile_card(profile_id, recent)``: what anyone may see of a member.

    Never bio, time zone, points, role or links. Hidden members are XPPRF (unknown) to everyone but
    themselves. ``rank`` is the all-time rank (None when not listed), ``ranked_members`` the board's size.
    """

    id: UUID
    display_name: str
    avatar_url: str | None
    is_self: bool
    xp: int
    level: int
    tier: str | None
    tier_name: str | None
    progress: LevelProgress
    rank: int | None
    ranked_members: int
    layers: list[CardLayer]
    seasons: list[CardSeason]
    recent_activity: list[CardActivity]


class AdminGrant(Result):
    """``public.service_role_grant_admin(profile_id)``: the profile's role after the call."""

    profile_id: UUID
    display_name: str
    role: str
    changed: bool


RESULTS = {"profile_card": ProfileCard, "service_role_grant_admin": AdminGrant}
