"""Resume review sessions as iCalendar (RFC 5545): one invitation per session, and a per-person feed.

Times are written in UTC (``DTSTART:20261124T013000Z``), which every calendar
places correctly; the description names the start in both parties' own time
zones (IANA), so each side reads their local time in the invitation itself.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event

from xpbase.models.reviews import Session

PRODID = "-//xpbase//resume reviews//EN"


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def session_event(session: Session, domain: str = "xpbase") -> Event:
    """One VEVENT for a session: UID ``review-session-<id>@<domain>``, UTC times, CANCELLED if it ended so."""
    start, end = _at(session.starts_at), _at(session.ends_at)
    event = Event()
    event.add("uid", f"review-session-{session.id}@{domain}")
    event.add("dtstamp", start)
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("summary", f"Resume review: {session.target_role}")
    sides = [
        (session.member.display_name, session.member.time_zone),
        (session.professional.name, session.professional.time_zone),
    ]
    local = [f"{who}: {start.astimezone(ZoneInfo(zone)):%a %d %b %H:%M} ({zone})" for who, zone in sides]
    event.add("description", "\n".join(local))
    if session.meeting_url:
        event.add("location", session.meeting_url)
        event.add("url", session.meeting_url)
    status = {"scheduled": "CONFIRMED", "completed": "CONFIRMED"}.get(session.status, "CANCELLED")
    event.add("status", status)
    return event


def calendar(sessions: list[Session], name: str = "Resume reviews", domain: str = "xpbase") -> bytes:
    """A VCALENDAR with one VEVENT per session, as bytes (text/calendar)."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("x-wr-calname", name)
    for session in sessions:
        cal.add_component(session_event(session, domain))
    return cal.to_ical()
