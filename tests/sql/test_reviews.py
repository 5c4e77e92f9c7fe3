"""Resume reviews (supabase/sql/95_reviews.sql): professionals, requests, the workflow, feedback, stats."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import acting_as
from tests.sql.reviews_world import EVERY_DAY, book, member, next_weekday_at, professional, request, weekly
from xpbase.db import Database, member_claims
from xpbase.errors import DomainError
from xpbase.models.reviews import Feedback, MyReviews, Professional, Request, ReviewerStatsList

ALL_DAY = weekly(EVERY_DAY, "00:00", "24:00")


async def counts(db: Database) -> tuple[int, ...]:
    """Rows in every review table: what a refused call must leave unchanged."""
    return tuple(
        await db.pool.fetchrow(
            "select (select count(*) from public.professionals), (select count(*) from"
            " public.review_requests),"
            " (select count(*) from public.review_sessions), (select count(*) from public.review_feedback),"
            " (select count(*) from private.availability_rules), (select count(*) from"
            " private.review_events),"
            " (select count(*) from private.availability_slots), (select count(*) from"
            " private.availability_exceptions)"
        )
    )


async def refused(db: Database, sqlstate: str, function: str, **kw: Any) -> None:
    before = await counts(db)
    with pytest.raises(DomainError) as err:
        await db.rpc(function, **kw)
    assert err.value.error.sqlstate == sqlstate, err.value.message
    assert await counts(db) == before


async def scheduled(db: Database) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """A professional linked to a profile, a member's request and its booked session."""
    reviewer = await member(db, "Reviewer")
    pro = await professional(db, "Europe/Berlin", ALL_DAY, profile_id=reviewer)
    m = await member(db, "Asker")
    req = await request(db, m, "Europe/Berlin", ALL_DAY)
    session = await book(db, req["id"], pro["id"], next_weekday_at(3, 10))
    return {"pro": pro, "reviewer": reviewer}, {"member": m, "request": req}, session


async def test_professional_round_trips_and_upserts_by_email(db: Database) -> None:
    """admin_upsert_professional adds, then updates the same email; the answer matches the model."""
    pro = Professional.model_validate(
        await professional(db, "Asia/Kolkata", weekly([1, 2], "09:00", "11:30"))
    )
    again = await db.rpc(
        "admin_upsert_professional",
        professional={
            "name": "Renamed",
            "email": pro.email.upper(),
            "time_zone": "Asia/Kolkata",
            "weekly_capacity": 7,
        },
    )
    assert again["id"] == str(pro.id) and again["name"] == "Renamed" and again["weekly_capacity"] == 7
    assert [a.model_dump() for a in pro.availability] == weekly([1, 2], "09:00", "11:30")


@pytest.mark.parametrize(
    ("weekly_", "sqlstate"),
    [
        ([{"weekday": 1, "start_minute": 600, "end_minute": 600}], "XPRAV"),  # zero length
        ([{"weekday": 1, "start_minute": 700, "end_minute": 600}], "XPRAV"),  # end before start
        ([{"weekday": 1, "start_minute": 600, "end_minute": 1500}], "XPRAV"),  # past 24 h
        ([{"weekday": 8, "start_minute": 60, "end_minute": 120}], "XPRAV"),
        ([{"weekday": 1, "start_minute": -5, "end_minute": 120}], "XPRAV"),
    ],
)
async def test_bad_availability_is_refused_and_changes_nothing(
    db: Database, weekly_: Any, sqlstate: str
) -> None:
    """Availability outside 0-24 h, of zero length or ending before it starts: XPRAV, nothing changed."""
    pro = await professional(db, "UTC", weekly([1], "09:00", "10:00"))
    await refused(db, sqlstate, "set_review_availability", professional_id=pro["id"], weekly=weekly_)


async def test_unknown_time_zone_past_slot_and_unknown_specialty_are_refused(db: Database) -> None:
    """XPRTZ for a made-up zone, XPRVT for a slot in the past, XPRSP for a specialty not on the list."""
    await refused(
        db, "XPRTZ", "admin_upsert_professional", professional={"name": "X", "time_zone": "Mars/Olympus"}
    )
    await refused(
        db,
        "XPRSP",
        "admin_upsert_professional",
        professional={"name": "X", "time_zone": "UTC", "specialties": ["astrology"]},
    )
    pro = await professional(db, "UTC", [])
    await refused(
        db,
        "XPRVT",
        "set_review_availability",
        professional_id=pro["id"],
        slots=[{"starts_at": "2020-01-01T10:00:00Z", "ends_at": "2020-01-01T11:00:00Z"}],
    )
    await refused(
        db,
        "XPRAV",
        "set_review_availability",
        professional_id=pro["id"],
        slots=[{"starts_at": "2099-01-01T11:00:00Z", "ends_at": "2099-01-01T10:00:00Z"}],
    )


async def test_request_bad_input_is_refused(db: Database) -> None:
    """A specialty nobody offers (XPRNP), an unknown zone (XPRTZ), a second open request (XPRVO)."""
    await professional(db, "UTC", ALL_DAY, specialties=["resume"])
    m = await member(db)
    claims = member_claims(m)
    base = {"target_role": "PM", "time_zone": "UTC", "preferred_times": ALL_DAY}
    await refused(
        db,
        "XPRNP",
        "request_review",
        role="authenticated",
        claims=claims,
        request={**base, "specialties": ["finance"]},
    )
    await refused(
        db,
        "XPRTZ",
        "request_review",
        role="authenticated",
        claims=claims,
        request={**base, "time_zone": "EST5EDTX"},
    )
    await refused(
        db,
        "XPRAV",
        "request_review",
        role="authenticated",
        claims=claims,
        request={**base, "preferred_times": []},
    )
    Request.model_validate(await request(db, m, "UTC", ALL_DAY))
    await refused(db, "XPRVO", "request_review", role="authenticated", claims=claims, request=base)


async def test_professional_at_capacity_cannot_be_booked(db: Database) -> None:
    """With weekly_capacity 1 a second booking the same week is XPRVK and changes nothing."""
    pro = await professional(db, "UTC", ALL_DAY, capacity=1)
    first = await request(db, await member(db), "UTC", ALL_DAY)
    second = await request(db, await member(db), "UTC", ALL_DAY)
    start = next_weekday_at(2, 9)
    await book(db, first["id"], pro["id"], start)
    before = await counts(db)
    with pytest.raises(DomainError) as err:
        await book(db, second["id"], pro["id"], start.replace(hour=14))
    assert err.value.error.sqlstate == "XPRVK"
    assert await counts(db) == before


async def test_workflow_records_each_step_notifies_both_and_awards_xp(db: Database) -> None:
    """requested -> matched -> scheduled -> confirmed -> completed: events with actors, notifications, XP."""
    pro_side, member_side, session = await scheduled(db)
    m, req = member_side["member"], member_side["request"]
    reviewer = pro_side["reviewer"]
    confirmed = await db.rpc(
        "review_action", role="authenticated", claims=member_claims(m), request_id=req["id"], action="confirm"
    )
    assert confirmed["session"]["member_confirmed"] is True
    # A member may not mark their own review completed.
    await refused(
        db,
        "42501",
        "review_action",
        role="authenticated",
        claims=member_claims(m),
        request_id=req["id"],
        action="complete",
    )
    # Not started yet.
    await refused(
        db,
        "XPRVT",
        "review_action",
        role="authenticated",
        claims=member_claims(reviewer),
        request_id=req["id"],
        action="complete",
    )
    await db.pool.execute(
        "update public.review_sessions set during = tstzrange(now() - interval '1 hour', now() -"
        " interval '15 minutes')"
        " where id = $1",
        session["id"],
    )
    done = Request.model_validate(
        await db.rpc(
            "review_action",
            role="authenticated",
            claims=member_claims(reviewer),
            request_id=req["id"],
            action="complete",
        )
    )
    assert done.status == "completed" and done.session is not None and done.session.status == "completed"
    steps = await db.pool.fetch(
        "select from_status, to_status, actor_id, actor_role from private.review_events where"
        " request_id = $1 order by id",
        req["id"],
    )
    assert [(s["from_status"], s["to_status"]) for s in steps] == [
        (None, "requested"),
        ("requested", "matched"),
        ("matched", "scheduled"),
        ("scheduled", "confirmed"),
        ("scheduled", "completed"),
    ]
    assert (
        steps[3]["actor_id"] == m
        and steps[4]["actor_id"] == reviewer
        and steps[4]["actor_role"] == "authenticated"
    )
    xp = dict(
        await db.pool.fetch(
            "select profile_id, sum(amount) from public.xp_ledger where activity_slug like"
            " 'resume_review_%' group by profile_id"
        )
    )
    assert xp == {m: 50, reviewer: 100}
    kinds = await db.pool.fetch(
        "select profile_id, kind from public.notifications where kind like 'review_%'"
    )
    assert {(r["profile_id"], r["kind"]) for r in kinds} == {
        (m, "review_scheduled"),
        (reviewer, "review_scheduled"),
        (m, "review_completed"),
    }


async def test_feedback_both_ways_once_each_and_rating_bounds(db: Database) -> None:
    """Each side rates once (XPRVF the second time), outside 1-5 is XPRVR; the mean rating updates."""
    pro_side, member_side, session = await scheduled(db)
    m, req, reviewer = member_side["member"], member_side["request"], pro_side["reviewer"]
    await refused(
        db,
        "XPRVS",
        "review_feedback",
        role="authenticated",
        claims=member_claims(m),
        request_id=req["id"],
        rating=5,
    )
    await db.pool.execute(
        "update public.review_sessions set during = tstzrange(now() - interval '1 hour', now() -"
        " interval '15 minutes')"
        " where id = $1",
        session["id"],
    )
    await db.rpc("review_action", request_id=req["id"], action="complete")
    for bad in (0, 6):
        await refused(
            db,
            "XPRVR",
            "review_feedback",
            role="authenticated",
            claims=member_claims(m),
            request_id=req["id"],
            rating=bad,
        )
    Feedback.model_validate(
        await db.rpc(
            "review_feedback",
            role="authenticated",
            claims=member_claims(m),
            request_id=req["id"],
            rating=4,
            body="Clear and kind",
        )
    )
    await refused(
        db,
        "XPRVF",
        "review_feedback",
        role="authenticated",
        claims=member_claims(m),
        request_id=req["id"],
        rating=5,
    )
    assert (
        await db.rpc(
            "review_feedback",
            role="authenticated",
            claims=member_claims(reviewer),
            request_id=req["id"],
            rating=5,
        )
    )["side"] == "professional"
    stats = ReviewerStatsList.model_validate(
        await db.rpc("reviewer_stats", professional_id=pro_side["pro"]["id"])
    )
    (row,) = stats.root
    assert (row.sessions_done, row.mean_rating, row.ratings_count, row.no_show_rate) == (1, 4.0, 1, 0.0)
    assert row.median_seconds_to_first_slot is not None


async def test_members_see_their_own_requests_and_sessions_professionals_theirs(db: Database) -> None:
    """RLS: the member and the reviewer read the session and request; another member reads neither."""
    pro_side, member_side, session = await scheduled(db)
    stranger = await member(db, "Stranger")
    for who, visible in ((member_side["member"], 1), (pro_side["reviewer"], 1), (stranger, 0)):
        async with acting_as(db, "authenticated", who) as conn:
            assert (
                await conn.fetchval(
                    "select count(*) from public.review_sessions where id = $1", session["id"]
                )
                == visible
            )
            assert await conn.fetchval("select count(*) from public.review_requests") == visible
    mine = MyReviews.model_validate(
        await db.rpc("my_reviews", role="authenticated", claims=member_claims(pro_side["reviewer"]))
    )
    assert [s.id for s in mine.reviewing] == [session["id"]] and mine.requests == []


async def test_reschedule_returns_the_request_to_the_queue_and_frees_the_slot(db: Database) -> None:
    """reschedule ends the session and puts the request back to requested; the slot can be booked again."""
    pro_side, member_side, session = await scheduled(db)
    req = member_side["request"]
    again = await db.rpc(
        "review_action",
        role="authenticated",
        claims=member_claims(member_side["member"]),
        request_id=req["id"],
        action="reschedule",
        note="conflict at work",
    )
    assert again["status"] == "requested" and again["session"]["status"] == "rescheduled"
    rebooked = await book(db, req["id"], pro_side["pro"]["id"], next_weekday_at(3, 10))
    assert rebooked["starts_at"] == session["starts_at"]


async def test_calendar_token_feed_lists_the_holders_sessions(db: Database) -> None:
    """A member's feed token lists their sessions; a wrong token is XPRCT."""
    _, member_side, session = await scheduled(db)
    token = (
        await db.rpc(
            "review_calendar_token", role="authenticated", claims=member_claims(member_side["member"])
        )
    )["token"]
    assert len(token) == 64
    feed = await db.rpc("service_role_review_calendar_feed", token=token)
    assert [s["id"] for s in feed["sessions"]] == [session["id"]]
    await refused(db, "XPRCT", "service_role_review_calendar_feed", token="0" * 64)


async def test_only_admins_match_and_manage(db: Database) -> None:
    """A plain member calling the admin RPCs gets 42501."""
    m = await member(db)
    for fn, kw in (
        ("admin_review_match_input", {}),
        ("admin_upsert_professional", {"professional": {"name": "x"}}),
        ("admin_import_review_availability", {"rows": []}),
    ):
        await refused(db, "42501", fn, role="authenticated", claims=member_claims(m), **kw)
