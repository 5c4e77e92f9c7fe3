"""The caller's own profile."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel
from quart import Blueprint, g
from quart_schema import security_scheme, validate_response

from service.auth import require_member
from service.context import get_db
from service.errors import APIError

blueprint = Blueprint("profiles", __name__)


class Profile(BaseModel):
    """A member's profile as they see it. XP and points are whole numbers; times are UTC."""

    id: UUID
    display_name: str
    bio: str
    avatar_url: str | None
    social_links: dict[str, Any]
    time_zone: str
    leaderboard_visible: bool
    role: str
    xp: int
    level: int
    tier: str | None
    points: int
    created_at: datetime


@blueprint.get("/v1/me")
@security_scheme([{"bearer": []}])
@require_member
@validate_response(Profile, 200)
async def get_me() -> Profile:
    """The signed-in member's own profile.

    Read as the caller (role authenticated, their claims) so row-level
    security decides what is visible. 401 for a missing or invalid token;
    404 ``unknown_profile`` when the token's subject has no profile.
    """
    async with get_db().as_member(g.profile_id, g.claims) as conn:
        row = await conn.fetchrow(
            """
            select id, display_name, bio, avatar_url, social_links, time_zone, leaderboard_visible,
                   role, xp, level, tier, points, created_at
              from public.profiles
             where id = (select auth.uid())
            """
        )
    if row is None:
        raise APIError(404, "unknown_profile", "No profile belongs to this token's subject.")
    return Profile(**dict(row))
