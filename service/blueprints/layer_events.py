"""Layer-gated events and dungeons (rules: supabase/sql/40_events.sql).

Paths are under ``/v1/layer-events`` (``/v1/events`` is the live websocket). Every route calls the
database as the caller, so SQL decides the gate, the places and who may manage events (the claim
reviewers: 403 ``forbidden`` otherwise).
"""

from __future__ import annotations

from uuid import UUID

from pydantic import AwareDatetime, BaseModel, Field
from quart import Blueprint, g
from quart_schema import (
    security_scheme,
    tag_blueprint,
    validate_querystring,
    validate_request,
    validate_response,
)

from service.lib.access import optional_member, require_member
from service.lib.context import caller, get_rpc
from service.lib.openapi import BEARER, errors
from xpbase.models.events_layers import Attendance, Event

blueprint = Blueprint("layer_events", __name__)
tag_blueprint(blueprint, ["layer events"])


class EventsOut(BaseModel):
    """Events soonest first, with the caller's sign-up and gate when signed in."""

    events: list[Event]


class EventsQuery(BaseModel):
    """layer: one layer's events (cyber: dungeons); include_past: ended events too."""

    layer: str | None = Field(default=None, max_length=40)
    include_past: bool = False


class EventIn(BaseModel):
    """A new event: the gate (min_status of the layer, min_level, min_tier), capacity, window (UTC), a place
    and/or an https online_url, the XP attendance awards (10-500) and a check-in code (stored hashed)."""

    title: str = Field(min_length=1, max_length=120)
    description: str = Field(default="", max_length=2000)
    layer: str = Field(min_length=1, max_length=40)
    min_status: str | None = Field(default=None, max_length=40)
    min_level: int | None = Field(default=None, ge=1, le=1000)
    min_tier: str | None = Field(default=None, max_length=40)
    capacity: int | None = Field(default=None, ge=1, le=100000)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    location: str | None = Field(default=None, max_length=200)
    online_url: str | None = Field(default=None, max_length=500)
    xp: int = Field(default=50, ge=10, le=500)
    check_in_code: str | None = Field(default=None, min_length=4, max_length=64)


class CheckInIn(BaseModel):
    """The event's check-in code."""

    code: str = Field(min_length=1, max_length=64)


class AttendanceIn(BaseModel):
    """The member who attended."""

    member_id: UUID


@blueprint.get("/v1/layer-events")
@optional_member
@validate_querystring(EventsQuery)
@validate_response(EventsOut, 200)
@errors(400, 401)
async def get_events(query_args: EventsQuery) -> EventsOut:
    """Upcoming and running events (and dungeons), with the caller's sign-up and why they may not join.

    Visitors without a token get the public list (read as service_role naming nobody: the counts come from
    sign-ups, which anon may not read).
    """
    who = caller() if hasattr(g, "claims") else {"role": "service_role", "claims": None}
    answer = await get_rpc().call(
        "event_list", **who, layer=query_args.layer, include_past=query_args.include_past
    )
    return EventsOut(events=answer.root)


@blueprint.post("/v1/layer-events")
@security_scheme(BEARER)
@require_member
@validate_request(EventIn)
@validate_response(Event, 201)
@errors(400, 401, 403, 404)
async def post_event(data: EventIn) -> tuple[Event, int]:
    """Create an event (reviewers). Errors: 403 `forbidden`; 400 `invalid_argument`, `constraint_violated`."""
    event = await get_rpc().call("admin_save_event", **caller(), event=data.model_dump(mode="json"))
    return event, 201


@blueprint.post("/v1/layer-events/<int(max=9223372036854775807):event_id>/signup")
@security_scheme(BEARER)
@require_member
@validate_response(Event, 200)
@errors(401, 403, 404, 409)
async def post_signup(event_id: int) -> Event:
    """Sign up: a place while there is one, else the waiting list.

    Errors: 403 `event_gate_refused` (the message says which requirement: "needs reality status 'grounded',
    you are 'dormant'"); 409 `event_closed` (started); 404 `unknown_event`.
    """
    return await get_rpc().call("join_event", **caller(), event_id=event_id)


@blueprint.delete("/v1/layer-events/<int(max=9223372036854775807):event_id>/signup")
@security_scheme(BEARER)
@require_member
@validate_response(Event, 200)
@errors(401, 404, 405)
async def delete_signup(event_id: int) -> Event:
    """Leave an event; a freed place goes to the first in line.

    Errors: 401; 404 `unknown_event`; 405 for an id beyond bigint (Werkzeug's router matches the path to
    the POST route of the same path, whose converter then refuses it, and answers 405, not 404).
    """
    return await get_rpc().call("leave_event", **caller(), event_id=event_id)


@blueprint.post("/v1/layer-events/<int(max=9223372036854775807):event_id>/check-in")
@security_scheme(BEARER)
@require_member
@validate_request(CheckInIn)
@validate_response(Attendance, 200)
@errors(400, 401, 403, 404, 409)
async def post_event_check_in(event_id: int, data: CheckInIn) -> Attendance:
    """Check in with the event's code: awards event_attendance once (granted 0 the second time).

    Errors: 403 `wrong_check_in_code`; 409 `event_closed` (outside the window, or no confirmed place).
    """
    return await get_rpc().call("event_check_in", **caller(), event_id=event_id, code=data.code)


@blueprint.post("/v1/layer-events/<int(max=9223372036854775807):event_id>/attendance")
@security_scheme(BEARER)
@require_member
@validate_request(AttendanceIn)
@validate_response(Attendance, 200)
@errors(400, 401, 403, 404, 409)
async def post_event_attendance(event_id: int, data: AttendanceIn) -> Attendance:
    """Record that a member attended (reviewers); awards event_attendance once."""
    return await get_rpc().call(
        "admin_mark_attended", **caller(), event_id=event_id, member_id=str(data.member_id)
    )
