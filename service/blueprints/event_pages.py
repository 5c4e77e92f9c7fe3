"""The public events page, ``/events``: upcoming and running events and dungeons with their gates.

Server-rendered like the other pages (service/blueprints/pages.py: its templates, stylesheet and security
headers). It reads ``public.event_list`` as the service with no member named, the list the SQL keeps for
visitors: sign-up counts but no one's sign-up, and the page leaves out online meeting links (members get
them from ``GET /v1/layer-events`` once signed in). Gates read as sentences from ``level_guide``'s names:
"Needs Reality status Grounded · level 5 · tier Member".
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ValidationError
from quart import Blueprint, Response, request
from quart_schema import hide

from service.blueprints.pages import ANON, _page
from service.lib.context import get_rpc
from xpbase.models.events_layers import Event
from xpbase.models.levels import LevelGuide

blueprint = Blueprint("event_pages", __name__)


class EventsQuery(BaseModel):
    """``?kind=event`` (reality layer events) or ``?kind=dungeon`` (cyber layer ones); both if absent."""

    kind: Literal["event", "dungeon"] | None = None


def gate_text(event: Event, guide: LevelGuide) -> str:
    """The event's gate as a visitor reads it, or "Open to every member"."""
    layers = {layer.slug: layer for layer in guide.layers}
    tiers = {tier.slug: tier.name for tier in guide.tiers}
    parts: list[str] = []
    if event.min_status:
        layer = layers.get(event.layer)
        statuses = {s.slug: s.name for s in layer.statuses} if layer else {}
        layer_name = layer.name if layer else event.layer
        parts.append(f"{layer_name} status {statuses.get(event.min_status, event.min_status)}")
    if event.min_level:
        parts.append(f"level {event.min_level}")
    if event.min_tier:
        parts.append(f"tier {tiers.get(event.min_tier, event.min_tier)}")
    if not parts:
        return "Open to every member"
    return "Needs " + " · ".join(parts)


def places_text(event: Event) -> str:
    """Places taken against capacity, and the waiting list once full."""
    if event.capacity is None:
        return f"{event.confirmed} signed up · no limit"
    if event.confirmed >= event.capacity:
        waiting = f" · {event.waitlisted} on the waiting list" if event.waitlisted else ""
        return f"Full ({event.capacity} places){waiting}"
    return f"{event.confirmed} of {event.capacity} places taken"


def when_text(event: Event) -> str:
    """``Mon 07 Dec 2026, 18:00-20:00 UTC`` (with an en dash; both dates when it spans days)."""
    start, end = datetime.fromisoformat(event.starts_at), datetime.fromisoformat(event.ends_at)
    if start.date() == end.date():
        return f"{start:%a %d %b %Y, %H:%M}–{end:%H:%M} UTC"
    return f"{start:%a %d %b %Y %H:%M} – {end:%a %d %b %Y %H:%M} UTC"


@blueprint.get("/events")
@hide
async def get_events_page() -> Response:
    """Upcoming and running events and dungeons, soonest first; ``?kind=event|dungeon`` narrows it."""
    try:
        query = EventsQuery.model_validate(request.args.to_dict())
    except ValidationError:
        return await _page("error.html", 400, title="Not a list", message="Choose events or dungeons.")
    rpc = get_rpc()
    events: list[Event] = (await rpc.call("event_list", layer=None, include_past=False, profile_id=None)).root
    if query.kind:
        events = [e for e in events if e.kind == query.kind]
    guide: LevelGuide = await rpc.call("level_guide", role="anon", claims=ANON)
    layer_names = {layer.slug: layer.name for layer in guide.layers}
    return await _page(
        "events.html",
        kind=query.kind,
        rows=[
            {
                "event": event,
                "layer": layer_names.get(event.layer, event.layer),
                "gate": gate_text(event, guide),
                "places": places_text(event),
                "when": when_text(event),
            }
            for event in events
        ],
    )
