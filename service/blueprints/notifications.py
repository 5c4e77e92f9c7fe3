"""The signed-in member's notifications: list (newest first, by cursor) and mark read."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StrictInt, model_validator
from quart import Blueprint, g
from quart_schema import (
    security_scheme,
    tag_blueprint,
    validate_querystring,
    validate_request,
    validate_response,
)

from service.lib.access import require_member
from service.lib.context import get_rpc
from service.lib.openapi import BEARER, BIGINT_MAX, errors
from service.lib.paging import PageQuery
from xpbase.models.notifications import MarkedRead, NotificationPage

blueprint = Blueprint("notifications", __name__)
tag_blueprint(blueprint, ["notifications"])


class NotificationsQuery(PageQuery):
    """``unread=true`` lists only unread ones; ``size`` and ``cursor`` page."""

    unread: bool = False


class MarkReadIn(BaseModel):
    """Which to mark read: ``ids`` (1-100 of them) or everything up to ``up_to_id``; exactly one."""

    ids: list[Annotated[StrictInt, Field(ge=1, le=BIGINT_MAX)]] | None = Field(
        default=None, min_length=1, max_length=100
    )
    up_to_id: StrictInt | None = Field(default=None, ge=1, le=BIGINT_MAX)

    @model_validator(mode="after")
    def _one_of(self) -> MarkReadIn:
        if (self.ids is None) == (self.up_to_id is None):
            raise ValueError("name either ids or up_to_id")
        return self


@blueprint.get("/v1/me/notifications")
@security_scheme(BEARER)
@require_member
@validate_querystring(NotificationsQuery)
@validate_response(NotificationPage, 200)
@errors(400, 401, 403)
async def list_notifications(query_args: NotificationsQuery) -> NotificationPage:
    """The member's notifications, newest first.

    Calls `public.list_notifications(size, cursor, unread_only)` as the member:
    level-ups, tier-ups, streak milestones, season results, with the count of
    unread ones. Errors: 400 `invalid_argument`, 401 `invalid_token`.
    """
    page: NotificationPage = await get_rpc().call(
        "list_notifications",
        role="authenticated",
        claims=g.claims,
        size=query_args.size,
        cursor=query_args.cursor,
        unread_only=query_args.unread,
    )
    return page


@blueprint.post("/v1/me/notifications/read")
@security_scheme(BEARER)
@require_member
@validate_request(MarkReadIn)
@validate_response(MarkedRead, 200)
@errors(400, 401, 403)
async def mark_notifications_read(data: MarkReadIn) -> MarkedRead:
    """Mark notifications read.

    Calls `public.mark_notifications_read(ids, up_to_id)` as the member. Ids of
    other members' notifications are ignored. Answers how many were marked now
    and how many stay unread. Errors: 400 `invalid_request`, 401 `invalid_token`.
    """
    marked: MarkedRead = await get_rpc().call(
        "mark_notifications_read", role="authenticated", claims=g.claims, ids=data.ids, up_to_id=data.up_to_id
    )
    return marked
