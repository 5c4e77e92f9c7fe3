"""Member claims with review, and what earns what (rules: supabase/sql/36_claims.sql).

Every route calls the database as the caller (role authenticated, their claims), so SQL decides who may
review (today admins: private.assert_can_review_claims; 403 ``forbidden`` otherwise).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field
from quart import Blueprint
from quart_schema import (
    security_scheme,
    tag_blueprint,
    validate_querystring,
    validate_request,
    validate_response,
)

from service.lib.access import require_member
from service.lib.context import caller, get_rpc
from service.lib.openapi import BEARER, errors
from xpbase.models.claims import Claim, PointValue

blueprint = Blueprint("claims", __name__)
tag_blueprint(blueprint, ["claims"])


class PointValuesOut(BaseModel):
    """Every active activity: what it earns (XP) and whether members claim it themselves."""

    activities: list[PointValue]


class ClaimsOut(BaseModel):
    """Claims, in the order the route names."""

    claims: list[Claim]


class ClaimIn(BaseModel):
    """A claim: the activity (claimable), a note (<= 1000 characters), an http(s) evidence URL and when it
    happened (UTC, within the last 365 days; default now)."""

    activity: str = Field(min_length=1, max_length=64)
    note: str = Field(default="", max_length=1000)
    evidence_url: str | None = Field(default=None, max_length=500)
    occurred_at: AwareDatetime | None = None


class ReviewIn(BaseModel):
    """approve, or reject with a reason (1 to 500 characters)."""

    decision: Literal["approve", "reject"]
    reason: str | None = Field(default=None, max_length=500)


class QueueQuery(BaseModel):
    """Which claims: status (pending by default) and at most size (1-200)."""

    status: Literal["pending", "approved", "rejected"] = "pending"
    size: int = Field(default=50, ge=1, le=200)


@blueprint.get("/v1/pointvalues")
@validate_response(PointValuesOut, 200)
async def get_point_values() -> PointValuesOut:
    """What earns what: every active activity with its XP, category and claim rules (`point_values`)."""
    return PointValuesOut(activities=(await get_rpc().call("point_values", role="anon")).root)


@blueprint.post("/v1/claims")
@security_scheme(BEARER)
@require_member
@validate_request(ClaimIn)
@validate_response(Claim, 201)
@errors(400, 401, 404, 429)
async def post_claim(data: ClaimIn) -> tuple[Claim, int]:
    """Claim a claimable activity for review (or awarded at once when it needs none).

    Errors: 400 `activity_not_claimable`, `invalid_argument`; 404 `unknown_activity`; 429
    `claim_limit_reached`.
    """
    occurred: datetime | None = data.occurred_at
    claim = await get_rpc().call(
        "submit_claim",
        **caller(),
        activity=data.activity,
        note=data.note,
        evidence_url=data.evidence_url,
        occurred_at=occurred.isoformat() if occurred else None,
    )
    return claim, 201


@blueprint.get("/v1/me/claims")
@security_scheme(BEARER)
@require_member
@validate_response(ClaimsOut, 200)
@errors(400, 401, 404)
async def get_my_claims() -> ClaimsOut:
    """The caller's last 100 claims, newest first."""
    return ClaimsOut(claims=(await get_rpc().call("my_claims", **caller())).root)


@blueprint.get("/v1/claims")
@security_scheme(BEARER)
@require_member
@validate_querystring(QueueQuery)
@validate_response(ClaimsOut, 200)
@errors(400, 401, 403)
async def get_claim_queue(query_args: QueueQuery) -> ClaimsOut:
    """The review queue (reviewers): pending claims oldest first, decided ones newest decision first."""
    return ClaimsOut(
        claims=(
            await get_rpc().call("claim_queue", **caller(), status=query_args.status, size=query_args.size)
        ).root
    )


@blueprint.post("/v1/claims/<int(max=9223372036854775807):claim_id>/review")
@security_scheme(BEARER)
@require_member
@validate_request(ReviewIn)
@validate_response(Claim, 200)
@errors(400, 401, 403, 404, 409)
async def post_claim_review(claim_id: int, data: ReviewIn) -> Claim:
    """Approve (awarded once, however often approved) or reject a claim (reviewers).

    Errors: 403 `forbidden`; 404 `unknown_claim`; 409 `claim_already_decided`; 400 `invalid_argument`.
    """
    return await get_rpc().call(
        "review_claim", **caller(), claim_id=claim_id, decision=data.decision, reason=data.reason
    )
