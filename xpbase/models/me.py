"""The signed-in member's own profile, as update_my_profile answers it (supabase/sql/10_profiles.sql)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from xpbase.models import Result


class OwnProfile(Result):
    """A member's profile as its owner sees it: XP and points are whole numbers; times are UTC."""

    id: UUID
    display_name: str
    bio: str
    avatar_url: str | None
    social_links: dict[str, Any]
    time_zone: str
    leaderboard_visible: bool
    profile_visibility: Literal["public", "members", "private"]
    role: str
    xp: int
    level: int
    tier: str | None
    points: int
    created_at: datetime


RESULTS = {"update_my_profile": OwnProfile, "my_profile": OwnProfile}
