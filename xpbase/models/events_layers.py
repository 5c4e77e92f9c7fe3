"""Result models of layer-gated events and dungeons (issue 15; rules: supabase/sql/40_events.sql).

Times are UTC ISO 8601 text as the functions write them; XP is whole points of XP.
"""

from __future__ import annotations

from typing import Literal

from pydantic import RootModel

from xpbase.models import Result

SignupStatus = Literal["confirmed", "waitlisted", "cancelled"]


class Event(Result):
    """One event (kind dungeon: the cyber layer's), its gate, counts and the caller's sign-up.

    ``gate`` is why the caller may not join ("needs reality status 'grounded', you are 'dormant'") or None;
    ``my_position`` is the caller's 1-based place in the waiting list.
    """

    id: int
    title: str
    description: str
    layer: str
    kind: Literal["event", "dungeon"]
    min_status: str | None
    min_level: int | None
    min_tier: str | None
    capacity: int | None
    starts_at: str
    ends_at: str
    location: str | None
    online_url: str | None
    xp: int
    cancelled: bool
    confirmed: int
    waitlisted: int
    my_status: SignupStatus | None
    my_position: int | None
    attended: bool | None
    gate: str | None


class Attendance(Event):
    """event_check_in, admin_mark_attended: the event for the member and XP granted (0 the second time)."""

    granted: int


class EventList(RootModel[list[Event]]):
    """event_list: events soonest first."""


RESULTS = {
    "event_list": EventList,
    "admin_save_event": Event,
    "join_event": Event,
    "leave_event": Event,
    "event_check_in": Attendance,
    "admin_mark_attended": Attendance,
}
