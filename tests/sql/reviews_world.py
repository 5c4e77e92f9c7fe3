"""Helpers for the resume review tests: professionals, requests and bookings through the RPCs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from tests.helpers import new_profile
from xpbase.db import Database, member_claims


def weekly(days: range | list[int], start: str, end: str) -> list[dict[str, int]]:
    """Weekly intervals on ISO weekdays from "HH:MM" to "HH:MM" (end "24:00" allowed)."""

    def minutes(hhmm: str) -> int:
        h, m = hhmm.split(":")
        return int(h) * 60 + int(m)

    return [{"weekday": d, "start_minute": minutes(start), "end_minute": minutes(end)} for d in days]


EVERY_DAY = range(1, 8)


async def professional(
    db: Database,
    time_zone: str,
    availability: list[dict[str, int]] | None = None,
    *,
    specialties: list[str] | None = None,
    capacity: int = 5,
    profile_id: UUID | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A professional (as service_role) with weekly availability; returns professional_json."""
    pro = await db.rpc(
        "admin_upsert_professional",
        professional={
            "name": extra.pop("name", f"Pro {uuid4().hex[:6]}"),
            "email": f"{uuid4().hex[:10]}@example.org",
            "time_zone": time_zone,
            "specialties": specialties if specialties is not None else ["resume"],
            "weekly_capacity": capacity,
            "profile_id": str(profile_id) if profile_id else None,
            **extra,
        },
    )
    if availability is not None:
        pro = await db.rpc("set_review_availability", professional_id=pro["id"], weekly=availability)
    return pro


async def request(
    db: Database,
    member: UUID,
    time_zone: str,
    preferred: list[dict[str, int]],
    **fields: Any,
) -> dict[str, Any]:
    """A review request made by the member themselves (authenticated)."""
    body = {"target_role": "Backend engineer", "specialties": ["resume"], "time_zone": time_zone}
    body.update(fields)
    body["preferred_times"] = preferred
    return await db.rpc("request_review", role="authenticated", claims=member_claims(member), request=body)


async def member(db: Database, name: str = "Member") -> UUID:
    return await new_profile(db, name)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def book(
    db: Database, request_id: int, professional_id: str, starts_at: datetime, minutes: int = 45, **kw: Any
) -> dict[str, Any]:
    """admin_book_review as service_role with a placeholder run and score."""
    return await db.rpc(
        "admin_book_review",
        request_id=request_id,
        professional_id=professional_id,
        starts_at=starts_at,
        run_id=uuid4(),
        score=1.0,
        terms={"manual": 1},
        session_minutes=minutes,
        **kw,
    )


def next_weekday_at(weekday: int, hour: int, *, after: datetime | None = None) -> datetime:
    """The next UTC datetime on ISO ``weekday`` at ``hour``:00 UTC, at least a day after ``after``."""
    base = (after or datetime.now(UTC)) + timedelta(days=1)
    day = base.replace(hour=hour, minute=0, second=0, microsecond=0)
    while day.isoweekday() != weekday:
        day += timedelta(days=1)
    return day
