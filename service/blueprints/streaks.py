"""Daily check-in and the signed-in member's streak."""

from __future__ import annotations

from quart import Blueprint, g
from quart_schema import security_scheme, tag_blueprint, validate_response

from service.lib.access import require_member
from service.lib.context import get_rpc
from service.lib.openapi import BEARER, errors
from xpbase.models.streaks import CheckIn, StreakStatus

blueprint = Blueprint("streaks", __name__)
tag_blueprint(blueprint, ["streaks"])


@blueprint.post("/v1/me/check-ins")
@security_scheme(BEARER)
@require_member
@validate_response(CheckIn, 200)
@errors(401, 403, 404, 503)
async def post_check_in() -> CheckIn:
    """Check in for today (the member's local day).

    Calls `public.check_in()` as the member. Grows the streak (streak freezes
    cover missed days), grants the day's XP (`granted`; `xp` is the award
    receipt) and reports a milestone. A second check-in the same day answers
    `checked_in: false` and changes nothing. Errors: 401 `invalid_token`,
    404 `unknown_profile`, 503 `not_configured` (no check-in rule).
    """
    result: CheckIn = await get_rpc().call("check_in", role="authenticated", claims=g.claims)
    return result


@blueprint.get("/v1/me/streak")
@security_scheme(BEARER)
@require_member
@validate_response(StreakStatus, 200)
@errors(401, 403)
async def get_streak() -> StreakStatus:
    """The member's streak as a check-in now would find it.

    Calls `public.streak_status()` as the member: current and longest streak,
    freezes held, whether today is done, when the local day ends (UTC) and the
    XP the next check-in brings. Errors: 401 `invalid_token`.
    """
    status: StreakStatus = await get_rpc().call("streak_status", role="authenticated", claims=g.claims)
    return status
