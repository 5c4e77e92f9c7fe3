"""Redemptions: a member's history and cancel, the admins' queue and steps (supabase/sql/55_store.sql)."""

from __future__ import annotations

from typing import Any, Literal

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
from xpbase.models.economy import Redemptions, RedemptionUpdate

blueprint = Blueprint("redemptions", __name__)
tag_blueprint(blueprint, ["redemptions"])


class ListQuery(BaseModel):
    size: int = Field(default=25, ge=1, le=100)
    before_id: int | None = Field(default=None, ge=1, le=BIGINT_MAX)


class QueueQuery(ListQuery):
    status: Literal["pending", "approved", "fulfilled", "rejected", "cancelled", "all"] = "pending"


class RedemptionsOut(BaseModel):
    """Newest first, each with its delivery details and steps (status, actor, note, time)."""

    redemptions: list[dict[str, Any]]


class NoteIn(BaseModel):
    note: str | None = Field(default=None, max_length=1000)


class StepIn(NoteIn):
    status: Literal["approved", "fulfilled", "rejected", "cancelled"]


def _out(answer: Any) -> RedemptionsOut:
    return RedemptionsOut(
        redemptions=[r.model_dump(mode="json") for r in Redemptions.model_validate(answer).root]
    )


@blueprint.get("/v1/redemptions")
@security_scheme(BEARER)
@require_member
@validate_querystring(ListQuery)
@validate_response(RedemptionsOut, 200)
@errors(400, 401)
async def get_redemptions(query_args: ListQuery) -> RedemptionsOut:
    """The caller's redemptions and their steps."""
    return _out(
        await get_db().rpc(
            "redemption_history",
            role="authenticated",
            claims=g.claims,
            size=query_args.size,
            before_id=query_args.before_id,
        )
    )


@blueprint.post("/v1/redemptions/<int(max=9223372036854775807):redemption_id>/cancel")
@security_scheme(BEARER)
@require_member
@validate_request(NoteIn)
@validate_response(RedemptionUpdate, 200)
@errors(400, 401, 403, 404, 409)
async def post_cancel(redemption_id: int, data: NoteIn) -> RedemptionUpdate:
    """Cancel the caller's own pending redemption: points refunded, stock restored.

    Errors: 404 ``unknown_redemption``; 409 ``redemption_state``; 403 ``forbidden`` (not yours).
    """
    answer = await get_db().rpc(
        "update_redemption",
        role="authenticated",
        claims=g.claims,
        redemption_id=redemption_id,
        status="cancelled",
        note=data.note,
    )
    return RedemptionUpdate.model_validate(answer)


@blueprint.get("/v1/admin/redemptions")
@security_scheme(BEARER)
@require_member
@validate_querystring(QueueQuery)
@validate_response(RedemptionsOut, 200)
@errors(400, 401, 403)
async def get_queue(query_args: QueueQuery) -> RedemptionsOut:
    """The admins' queue (default: pending), with delivery details. 403 ``forbidden`` for non-admins."""
    return _out(
        await get_db().rpc(
            "redemption_queue",
            role="authenticated",
            claims=g.claims,
            status=None if query_args.status == "all" else query_args.status,
            size=query_args.size,
            before_id=query_args.before_id,
        )
    )


@blueprint.post("/v1/admin/redemptions/<int(max=9223372036854775807):redemption_id>")
@security_scheme(BEARER)
@require_member
@validate_request(StepIn)
@validate_response(RedemptionUpdate, 200)
@errors(400, 401, 403, 404, 409)
async def post_step(redemption_id: int, data: StepIn) -> RedemptionUpdate:
    """Approve, fulfil, reject or cancel a redemption (admins); the member is notified of every step.

    Errors: 403 ``forbidden``; 404 ``unknown_redemption``; 409 ``redemption_state``.
    """
    answer = await get_db().rpc(
        "update_redemption",
        role="authenticated",
        claims=g.claims,
        redemption_id=redemption_id,
        status=data.status,
        note=data.note,
    )
    return RedemptionUpdate.model_validate(answer)
