"""Challenges: the public catalogue and the caller's progress (rules: supabase/sql/39_challenges.sql).

Completions are recorded by a trusted judge through `public.service_role_complete_challenge`, not over this
API; challenges are loaded with `xpbase load challenges FILE.yaml`.
"""

from __future__ import annotations

from pydantic import BaseModel
from quart import Blueprint
from quart_schema import security_scheme, tag_blueprint, validate_response

from service.lib.access import require_member
from service.lib.context import caller, get_rpc
from service.lib.openapi import BEARER, errors
from xpbase.models.challenges import Challenge, MyChallenges

blueprint = Blueprint("challenges", __name__)
tag_blueprint(blueprint, ["challenges"])


class ChallengesOut(BaseModel):
    """The active challenges in catalogue order."""

    challenges: list[Challenge]


@blueprint.get("/v1/challenges")
@validate_response(ChallengesOut, 200)
async def list_challenges() -> ChallengesOut:
    """The challenge catalogue: title, difficulty, layer, XP, prerequisites and window of each active one.

    Calls `public.challenge_catalogue()` as anon; `open` says whether now is inside the challenge's window.
    """
    return ChallengesOut(challenges=(await get_rpc().call("challenge_catalogue", role="anon")).root)


@blueprint.get("/v1/me/challenges")
@security_scheme(BEARER)
@require_member
@validate_response(MyChallenges, 200)
@errors(400, 401, 403, 404)
async def get_my_challenges() -> MyChallenges:
    """The signed-in member's progress: each challenge completed, open, locked (prerequisites) or closed.

    Calls `public.my_challenges()` as the member, with the XP earned by completions. 404 `unknown_profile`
    when the token's subject has no profile.
    """
    progress: MyChallenges = await get_rpc().call("my_challenges", **caller())
    return progress
