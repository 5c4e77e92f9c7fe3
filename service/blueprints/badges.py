"""Badges: the catalogue and the badges members hold (supabase/sql/33_badges.sql)."""

from __future__ import annotations

from uuid import UUID

from quart import Blueprint, g
from quart_schema import security_scheme, tag_blueprint, validate_response

from service.lib.access import optional_member, require_member
from service.lib.context import caller, get_rpc
from service.lib.openapi import BEARER, errors
from xpbase.models.badges import BadgeCatalogue, ProfileBadges

blueprint = Blueprint("badges", __name__)
tag_blueprint(blueprint, ["badges"])


@blueprint.get("/v1/badges")
@optional_member
@validate_response(BadgeCatalogue, 200)
@errors(401)
async def list_badges() -> BadgeCatalogue:
    """Every active badge, in display order.

    Name, description, level (bronze, silver, gold), series, the rule's kind and threshold, once per member
    or per subject, how many members hold it (those the caller may see), and the progress of its latest
    retroactive evaluation over the ledger. Calls `public.badge_catalogue()` as anon, or as the member.
    """
    catalogue: BadgeCatalogue = await get_rpc().call("badge_catalogue", **caller())
    return catalogue


@blueprint.get("/v1/profiles/<uuid:profile_id>/badges")
@optional_member
@validate_response(ProfileBadges, 200)
@errors(400, 401, 404)
async def get_profile_badges(profile_id: UUID) -> ProfileBadges:
    """The badges a member holds, newest first, with counts per level.

    Calls `public.profile_badges` as anon without a token, or as the member with one. Seen by whoever
    sees the member's profile card (`profile_visibility`); 404 `unknown_profile` to anyone else, like an id
    that does not exist.
    """
    badges: ProfileBadges = await get_rpc().call("profile_badges", **caller(), profile_id=profile_id)
    return badges


@blueprint.get("/v1/me/badges")
@security_scheme(BEARER)
@require_member
@validate_response(ProfileBadges, 200)
@errors(400, 401, 403, 404)
async def get_my_badges() -> ProfileBadges:
    """The signed-in member's badges (also while hidden from leaderboards).

    Calls `public.profile_badges(auth.uid())` as the member. 404 `unknown_profile` when the token's subject
    has no profile.
    """
    badges: ProfileBadges = await get_rpc().call(
        "profile_badges", role="authenticated", claims=g.claims, profile_id=g.profile_id
    )
    return badges
