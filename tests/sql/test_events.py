"""Layer-gated events and dungeons: gate refusals with reasons, capacity under concurrency, waiting list,
attendance awarded once, and layer status as a multiplier kind."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from tests.helpers import award, new_profile
from tests.sql.economy_load import make_members
from xpbase.db import Database, member_claims
from xpbase.errors import DomainError
from xpbase.models.events_layers import Attendance, Event, EventList


async def save(db: Database, **event: Any) -> Event:
    start = datetime.now(UTC) + timedelta(days=1)
    base = {
        "title": "Meetup",
        "layer": "reality",
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=2)).isoformat(),
        "location": "Community hall",
    }
    return Event.model_validate(await db.rpc("admin_save_event", event={**base, **event}))


async def join(db: Database, pid: UUID, event_id: int) -> Event:
    answer = await db.rpc("join_event", role="authenticated", claims=member_claims(pid), event_id=event_id)
    return Event.model_validate(answer)


async def refusal(db: Database, pid: UUID, event_id: int) -> DomainError:
    with pytest.raises(DomainError) as refused:
        await join(db, pid, event_id)
    return refused.value


async def test_each_gate_refuses_with_its_reason(db: Database) -> None:
    """Status, level and tier gates each refuse below them (XPEVG, the reason as message) and admit above."""
    low = await new_profile(db, "Low")
    high = await new_profile(db, "High")
    await award(db, high, "challenge_completed", "h1", amount=1000)
    await award(db, high, "challenge_completed", "h2", amount=1000)
    await award(db, high, "challenge_completed", "h3", amount=600)  # reality 2600 XP: grounded, level 5
    status_gate = await save(db, min_status="grounded")
    level_gate = await save(db, min_level=5)
    tier_gate = await save(db, min_tier="member")
    dungeon = await save(db, layer="cyber", min_status="connected", title="Dungeon")
    assert dungeon.kind == "dungeon" and status_gate.kind == "event"

    refused = await refusal(db, low, status_gate.id)
    assert refused.error.sqlstate == "XPEVG"
    assert refused.message == "needs reality status 'grounded', you are 'dormant'"
    assert (await refusal(db, low, level_gate.id)).message == "needs level 5, you are level 1"
    assert (await refusal(db, low, tier_gate.id)).message == "needs tier 'member', you are 'basic'"
    assert (
        await refusal(db, high, dungeon.id)
    ).message == "needs cyber status 'connected', you are 'offline'"
    assert (await refusal(db, high, tier_gate.id)).message == "needs tier 'member', you are 'basic'"
    assert (await join(db, high, status_gate.id)).my_status == "confirmed"
    assert (await join(db, high, level_gate.id)).my_status == "confirmed"
    assert await db.pool.fetchval("select count(*) from public.event_signups where profile_id = $1", low) == 0
    listed = EventList.model_validate(
        await db.rpc("event_list", role="authenticated", claims=member_claims(low), layer="reality")
    ).root
    assert {e.id: e.gate for e in listed}[
        status_gate.id
    ] == "needs reality status 'grounded', you are 'dormant'"


async def test_hundred_concurrent_sign_ups_for_ten_places(db: Database, database_url: str) -> None:
    """100 members sign up at once for 10 places: exactly 10 confirmed, 90 waitlisted in a 1..90 line."""
    event = await save(db, capacity=10)
    members = await make_members(db, 100, "rush-")
    pool = await Database.connect(database_url, min_size=40, max_size=40)
    try:
        answers = await asyncio.gather(
            *(
                pool.rpc("join_event", role="authenticated", claims=member_claims(pid), event_id=event.id)
                for pid in members
            )
        )
    finally:
        await pool.close()
    statuses = Counter(Event.model_validate(a).my_status for a in answers)
    assert statuses == {"confirmed": 10, "waitlisted": 90}
    rows = await db.pool.fetch("select status, count(*) from public.event_signups group by status")
    assert {r["status"]: r["count"] for r in rows} == {"confirmed": 10, "waitlisted": 90}
    positions = sorted(
        Event.model_validate(a).my_position for a in answers if Event.model_validate(a).my_position
    )
    assert positions == list(range(1, 91))


async def test_leaving_moves_the_first_in_line_up_and_notifies(db: Database) -> None:
    event = await save(db, capacity=1)
    a, b, c = [await new_profile(db, n) for n in "abc"]
    await join(db, a, event.id)
    assert (await join(db, b, event.id)).my_position == 1
    assert (await join(db, c, event.id)).my_position == 2
    assert (await join(db, b, event.id)).my_position == 1  # joining again changes nothing
    await db.rpc("leave_event", role="authenticated", claims=member_claims(a), event_id=event.id)
    assert (await join(db, b, event.id)).my_status == "confirmed"
    assert (await join(db, c, event.id)).my_position == 1
    kinds = await db.pool.fetchval(
        "select count(*) from public.notifications where profile_id = $1 and kind = 'event_place'", b
    )
    assert kinds == 1


async def test_check_in_code_awards_attendance_once(db: Database) -> None:
    """The right code during the event awards the event's XP once; wrong code, no place, early: refused."""
    event = await save(db, xp=80, check_in_code="ORBIT-42")
    member = await new_profile(db, "Attendee")
    stranger = await new_profile(db, "Stranger")
    await join(db, member, event.id)

    async def check_in(pid: UUID, code: str) -> Attendance:
        answer = await db.rpc(
            "event_check_in", role="authenticated", claims=member_claims(pid), event_id=event.id, code=code
        )
        return Attendance.model_validate(answer)

    with pytest.raises(DomainError) as early:
        await check_in(member, "ORBIT-42")
    assert early.value.error.sqlstate == "XPEVC"
    now = datetime.now(UTC)
    async with db.pool.acquire() as conn:  # the table owner moves the clock of the event
        await conn.execute(
            "update public.events set starts_at = $2, ends_at = $3 where id = $1",
            event.id,
            now - timedelta(minutes=10),
            now + timedelta(hours=1),
        )
    with pytest.raises(DomainError) as wrong:
        await check_in(member, "orbit-41")
    assert wrong.value.error.sqlstate == "XPEVK"
    with pytest.raises(DomainError) as no_place:
        await check_in(stranger, "ORBIT-42")
    assert no_place.value.error.sqlstate == "XPEVC"
    first = await check_in(member, "ORBIT-42")
    assert first.granted == 80 and first.attended
    assert (await check_in(member, "ORBIT-42")).granted == 0
    moderator = Attendance.model_validate(
        await db.rpc("admin_mark_attended", event_id=event.id, member_id=member)
    )
    assert moderator.granted == 0
    assert await db.pool.fetchval("select xp from public.profiles where id = $1", member) == 80
    with pytest.raises(DomainError) as late:
        await join(db, stranger, event.id)
    assert late.value.error.sqlstate == "XPEVC"


async def test_a_moderator_records_attendance_and_members_may_not(db: Database) -> None:
    start = datetime.now(UTC) - timedelta(minutes=1)
    member = await new_profile(db, "Member")
    event = await save(db, starts_at=(start + timedelta(minutes=5)).isoformat())
    await join(db, member, event.id)
    async with db.pool.acquire() as conn:
        await conn.execute("update public.events set starts_at = $2 where id = $1", event.id, start)
    with pytest.raises(DomainError) as refused:
        await db.rpc(
            "admin_mark_attended",
            role="authenticated",
            claims=member_claims(member),
            event_id=event.id,
            member_id=member,
        )
    assert refused.value.error.sqlstate == "42501"
    with pytest.raises(DomainError) as not_admin:
        await db.rpc(
            "admin_save_event", role="authenticated", claims=member_claims(member), event={"title": "x"}
        )
    assert not_admin.value.error.sqlstate == "42501"
    done = Attendance.model_validate(await db.rpc("admin_mark_attended", event_id=event.id, member_id=member))
    assert done.granted == 50


async def test_a_layer_status_carries_a_multiplier(db: Database) -> None:
    """A layer_status multiplier applies to members holding that status before the award, not to others."""
    async with db.as_service() as conn:
        await conn.execute(
            "insert into public.multipliers (kind, match_value, factor)"
            " values ('layer_status', 'reality:awakened', 2)"
        )
    awakened = await new_profile(db, "Awake")
    dormant = await new_profile(db, "Dormant")
    first = await award(db, awakened, "challenge_completed", "a1", amount=500)
    assert first["granted"] == 500  # dormant before this award
    second = await award(db, awakened, "challenge_completed", "a2", amount=100)
    assert second["granted"] == 200
    assert second["multipliers"] == [{"kind": "layer_status", "match": "reality:awakened", "factor": 2}]
    assert (await award(db, dormant, "challenge_completed", "d1", amount=100))["granted"] == 100


async def test_unknown_names_are_refused_and_nothing_is_saved(db: Database) -> None:
    """An unknown layer, tier or layer status is XPBAD naming it (not a foreign key violation), on create and
    on change, and no event row is written; an unknown id is XPEVU."""
    kept = await save(db)
    wrong = [
        ({"layer": "atlantis"}, "Unknown layer: atlantis"),
        ({"min_tier": "mythril"}, "Unknown tier: mythril"),
        ({"min_status": "Champion"}, "Unknown status of layer reality: Champion"),
        ({"id": kept.id, "min_tier": "mythril"}, "Unknown tier: mythril"),
        ({"id": kept.id, "min_status": "Champion"}, "Unknown status of layer reality: Champion"),
    ]
    for event, message in wrong:
        with pytest.raises(DomainError) as refused:
            await save(db, **event)
        assert (refused.value.error.sqlstate, refused.value.message) == ("XPBAD", message)
    with pytest.raises(DomainError) as unknown:
        await save(db, id=kept.id + 1000)
    assert unknown.value.error.sqlstate == "XPEVU"
    async with db.pool.acquire() as conn:
        rows = await conn.fetch("select id, min_tier, min_status from public.events")
    assert [tuple(r) for r in rows] == [(kept.id, None, None)]
