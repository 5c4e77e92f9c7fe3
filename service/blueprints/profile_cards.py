"""Public member profiles: ``GET /v1/profiles/{profile_id}`` (one call of ``public.profile_card``)."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel
from quart import Blueprint
from quart_schema import security_scheme, validate_querystring, validate_response

from service.auth import current_member
from service.context import get_db
from service.errors import APIError
from xpbase.db import Role
from xpbase.models import Result
from xpbase.models.profiles import ProfileCard

blueprint = Blueprint("profile_cards", __name__)


class CardQuery(BaseModel):
    """``recent``: how many of the newest public awards to list (0-50, default 10; SQL checks the range)."""

    recent: int = 10


class ErrorDetail(Result):
    """What went wrong: a machine-readable ``code`` and a human ``message``."""

    code: str
    message: str


class ErrorBody(Result):
    """Every error answer: ``{"error": {"code", "message"}}``."""

    error: ErrorDetail


@blueprint.get("/v1/profiles/<uuid:profile_id>")
@security_scheme([{}, {"bearer": []}, {"cookie": []}])
@validate_querystring(CardQuery)
@validate_response(ProfileCard, 200)
@validate_response(ErrorBody, 404)
async def get_profile(profile_id: UUID, query_args: CardQuery) -> ProfileCard:
    """A member's public profile card.

    Name, avatar, level and progress to the next level (XP), tier, XP and status per layer, this season's
    scores and ranks, the all-time rank and the newest public awards (activity, layer, XP, UTC time).
    Without a token it is read as anon; with one, as that member (who also sees their own card while
    hidden from leaderboards). A member who hides from leaderboards is ``404 unknown_profile`` to everyone
    else, exactly like an id that does not exist. 400 ``invalid_argument`` for ``recent`` outside 0-50.
    """
    claims = current_member()
    role: Role = "authenticated" if claims else "anon"
    raw = await get_db().rpc(
        "profile_card",
        role=role,
        claims=claims or {"role": "anon"},
        profile_id=profile_id,
        recent=query_args.recent,
    )
    if raw is None:  # the function always answers or raises; keep the contract explicit
        raise APIError(404, "unknown_profile", "No such member.")
    return ProfileCard.model_validate(raw)
