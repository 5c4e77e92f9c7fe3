"""The caller's own profile."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field, StrictBool
from quart import Blueprint, g
from quart_schema import security_scheme, tag_blueprint, validate_request, validate_response

from service.lib.access import require_member
from service.lib.context import get_rpc
from service.lib.openapi import BEARER, errors
from xpbase.models.me import OwnProfile

blueprint = Blueprint("profiles", __name__)
tag_blueprint(blueprint, ["profiles"])


class Profile(BaseModel):
    """A member's profile as they see it. XP and points are whole numbers; times are UTC."""

    id: UUID
    display_name: str
    bio: str
    avatar_url: str | None
    social_links: dict[str, Any]
    time_zone: str
    leaderboard_visible: bool
    profile_visibility: Literal["public", "members", "private"] = Field(
        description="Who sees your profile card: public (anyone), members (signed-in members; the "
        "default) or private (you, moderators and admins)."
    )
    role: str
    xp: int
    level: int
    tier: str | None
    points: int
    created_at: datetime


@blueprint.get("/v1/me")
@security_scheme(BEARER)
@require_member
@validate_response(Profile, 200)
@errors(401, 403, 404)
async def get_me() -> Profile:
    """The signed-in member's own profile.

    Calls `public.my_profile()` as the caller (role authenticated, their
    claims): bio, social links and points are for their owner's eyes only. The
    access token comes from the ``Authorization: Bearer`` header or the
    HttpOnly access cookie that a cookie-mode sign-in sets. 401 for a missing
    or invalid token; 404 ``unknown_profile`` when the token's subject has no
    profile.
    """
    own: OwnProfile = await get_rpc().call("my_profile", role="authenticated", claims=g.claims)
    return Profile(**own.model_dump())


class ProfileChanges(BaseModel):
    """The fields to change; those left out stay as they are. ``avatar_url: null`` clears the avatar;
    no other field takes null (the document says so: only ``avatar_url`` is nullable)."""

    display_name: str = Field(default=None, min_length=1, max_length=64)
    bio: str = Field(default=None, max_length=500)
    avatar_url: str | None = Field(default=None, max_length=500, pattern=r"^https://")
    social_links: dict[str, Any] = Field(default=None)
    time_zone: str = Field(default=None, min_length=1, max_length=64)
    leaderboard_visible: StrictBool = Field(default=None)
    profile_visibility: Literal["public", "members", "private"] = Field(default=None)


@blueprint.patch("/v1/me")
@security_scheme(BEARER)
@require_member
@validate_request(ProfileChanges)
@validate_response(OwnProfile, 200)
@errors(400, 401, 403, 404)
async def update_me(data: ProfileChanges) -> OwnProfile:
    """Edit your own profile.

    Calls `public.update_my_profile(changes)` as the member: display name
    (1-64), bio (at most 500), avatar URL (https, or null to clear), social
    links (an object), time zone (an IANA name such as `Europe/Berlin`),
    whether you are listed on leaderboards, and who sees your profile card
    (`profile_visibility`: public, members or private). Errors: 400 `invalid_argument`
    (unknown time zone), `invalid_request`, `constraint_violated`; 401.
    """
    changes = data.model_dump(mode="json", exclude_unset=True)
    profile: OwnProfile = await get_rpc().call(
        "update_my_profile", role="authenticated", claims=g.claims, changes=changes
    )
    return profile
