"""Points: the caller's balance and ledger, and admins' corrections (supabase/sql/32_points.sql)."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, Field
from quart import Blueprint, g
from quart_schema import (
    security_scheme,
    tag_blueprint,
    validate_querystring,
    validate_request,
    validate_response,
)

from service.lib.access import require_member
from service.lib.context import get_db
from service.lib.openapi import BEARER, BIGINT_MAX, errors
from xpbase.models.economy import PointsChange, PointsStatement

blueprint = Blueprint("points", __name__)
tag_blueprint(blueprint, ["points"])


class StatementQuery(BaseModel):
    size: int = Field(default=20, ge=1, le=100)
    before_id: int | None = Field(default=None, ge=1, le=BIGINT_MAX)


class AdjustIn(BaseModel):
    """``amount`` points to add (> 0) or remove (< 0; the balance stops at zero), why, and a key that makes
    a retry change nothing."""

    profile_id: UUID
    amount: int = Field(ge=-100_000_000, le=100_000_000)
    reason: str = Field(min_length=1, max_length=500)
    idempotency_key: str = Field(min_length=1, max_length=200)


@blueprint.get("/v1/points")
@security_scheme(BEARER)
@require_member
@validate_querystring(StatementQuery)
@validate_response(PointsStatement, 200)
@errors(400, 401, 404)
async def get_points(query_args: StatementQuery) -> PointsStatement:
    """The caller's points balance and ledger entries, newest first (``next_before_id`` pages back).

    Errors: 400 ``invalid_argument``; 401 ``invalid_token``; 404 ``unknown_profile`` when the token's
    profile is gone.
    """
    answer = await get_db().rpc(
        "points_statement",
        role="authenticated",
        claims=g.claims,
        size=query_args.size,
        before_id=query_args.before_id,
    )
    return PointsStatement.model_validate(answer)


@blueprint.post("/v1/admin/points")
@security_scheme(BEARER)
@require_member
@validate_request(AdjustIn)
@validate_response(PointsChange, 200)
@errors(400, 401, 403, 404, 409)
async def post_admin_points(data: AdjustIn) -> PointsChange:
    """Correct a member's points (admins): a ledger row naming the caller and the reason.

    Errors: 403 ``forbidden`` for members who are not admins; 404 ``unknown_profile``; 400
    ``invalid_argument``; 409 ``idempotency_key_reused``.
    """
    answer = await get_db().rpc(
        "admin_adjust_points",
        role="authenticated",
        claims=g.claims,
        profile_id=data.profile_id,
        amount=data.amount,
        reason=data.reason,
        idempotency_key=data.idempotency_key,
    )
    return PointsChange.model_validate(answer)
