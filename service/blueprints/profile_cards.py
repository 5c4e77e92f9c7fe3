"""Public member profiles: ``GET /v1/profiles/{profile_id}`` (one call of ``public.profile_card``)."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, Field
from quart import Blueprint
from quart_schema import tag_blueprint, validate_querystring, validate_response

from service.lib.access import optional_member
from service.lib.context import caller, get_rpc
from service.lib.openapi import errors
from xpbase.models.profiles import ProfileCard

blueprint = Blueprint("profile_cards", __name__)
tag_blueprint(blueprint, ["profiles"])


class CardQuery(BaseModel):
    """``recent``: how many of the newest public awards to list (0-50, default 10; SQL checks the range,
    the bounds here put it in the document)."""

    recent: int = Field(default=10, ge=0, le=50)


@blueprint.get("/v1/profiles/<uuid:profile_id>")
@optional_member
@validate_querystring(CardQuery)
@validate_response(ProfileCard, 200)
@errors(400, 401, 404)
async def get_profile(profile_id: UUID, query_args: CardQuery) -> ProfileCard:
    """A member's public profile card.

    Name, avatar, level and progress to the next level (XP), tier, XP and status per layer, this season's
    scores and ranks, the all-time rank and the newest public awards (activity, layer, XP, UTC time).
    Calls `public.profile_card` as anon without a token, or as the member with one. Who sees a card follows
    the member's `profile_visibility` (decided in SQL): public cards anyone, members cards signed-in members,
    private cards the member and moderators/admins; a member hidden from leaderboards only themselves and
    moderators/admins. Any other card is 404 `unknown_profile`, exactly like an id that does not exist.
    400 `invalid_request` for `recent` outside 0-50 (the query model refuses it before SQL would).
    """
    card: ProfileCard = await get_rpc().call(
        "profile_card", **caller(), profile_id=profile_id, recent=query_args.recent
    )
    return card
