"""Points timeline and dashboard stats: local-time buckets, period-over-period change, access."""

from __future__ import annotations

from datetime import UTC, date, datetime

import asyncpg
import pytest

from tests.helpers import acting_as, award, new_profile
from xpbase.db import Database


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def test_daily_timeline_buckets_by_local_day(db: Database) -> None:
    """XP per local day in the profile's zone: 22:00 in New York on the 1st is 03:00 UTC on the 2nd."""
    pid = await new_profile(db, "Ada")
    async with db.as_service() as conn:
        await conn.execute("update public.profiles set time_zone = 'America/New_York' where id = $1", pid)
    await award(db, pid, "xp_purchase", "a", amount=100, occurred_at=at("2026-03-02T03:00:00"))
    await award(db, pid, "xp_purchase", "b", amount=40, occurred_at=at("2026-03-03T15:00:00"))
    await award(db, pid, "xp_purchase", "c", amount=7, occurred_at=at("2026-02-01T15:00:00"))
    async with db.as_member(pid) as conn:
        rows = await conn.fetch(
            "select * from public.xp_timeline($1, 'day', 3, $2)", pid, at("2026-03-03T20:00:00")
        )
    assert [(r["period_start"], r["xp"], r["awards"], r["cumulative_xp"]) for r in rows] == [
        (date(2026, 3, 1), 100, 1, 107),
        (date(2026, 3, 2), 0, 0, 107),
        (date(2026, 3, 3), 40, 1, 147),
    ]


async def test_weekly_and_monthly_timelines(db: Database) -> None:
    """Weeks start on Monday and months on the 1st; each row ends where the next begins."""
    pid = await new_profile(db, "Ada")
    await award(db, pid, "xp_purchase", "a", amount=10, occurred_at=at("2026-03-01T12:00:00"))  # a Sunday
    await award(db, pid, "xp_purchase", "b", amount=20, occurred_at=at("2026-03-02T12:00:00"))  # Monday
    weeks = await db.rpc_rows(
        "xp_timeline", profile_id=pid, granularity="week", periods=2, at=at("2026-03-04T00:00:00")
    )
    assert [(r["period_start"], r["period_end"], r["xp"]) for r in weeks] == [
        (date(2026, 2, 23), date(2026, 3, 2), 10),
        (date(2026, 3, 2), date(2026, 3, 9), 20),
    ]
    months = await db.rpc_rows(
        "xp_timeline", profile_id=pid, granularity="month", periods=2, at=at("2026-03-04T00:00:00")
    )
    assert [(r["period_start"], r["xp"]) for r in months] == [(date(2026, 2, 1), 0), (date(2026, 3, 1), 30)]


async def test_dashboard_stats_compare_with_the_previous_period(db: Database) -> None:
    """dashboard_stats: this week's XP against last week's, with change, percentage and direction."""
    pid = await new_profile(db, "Ada")
    await award(db, pid, "xp_purchase", "a", amount=200, occurred_at=at("2026-02-24T12:00:00"))
    await award(db, pid, "xp_purchase", "b", amount=150, occurred_at=at("2026-03-03T12:00:00"))
    await award(db, pid, "challenge_completed", "c", amount=100, occurred_at=at("2026-03-04T12:00:00"))
    stats = await db.rpc("dashboard_stats", profile_id=pid, period="week", at=at("2026-03-05T00:00:00"))
    assert (stats["xp"], stats["previous_xp"], stats["change"], stats["change_pct"], stats["direction"]) == (
        250,
        200,
        50,
        25.0,
        "up",
    )
    assert (stats["total_xp"], stats["rank"], stats["period_start"]) == (450, 1, "2026-03-02")
    assert stats["by_activity"] == [
        {"activity": "xp_purchase", "xp": 150, "awards": 1},
        {"activity": "challenge_completed", "xp": 100, "awards": 1},
    ]
    quiet = await db.rpc("dashboard_stats", profile_id=pid, period="week", at=at("2026-02-10T00:00:00"))
    assert (quiet["xp"], quiet["previous_xp"], quiet["change_pct"], quiet["direction"]) == (
        0,
        0,
        None,
        "flat",
    )


async def test_members_read_only_their_own_history(db: Database) -> None:
    """Another member gets 42501 and anon may not call; the ledger's policy is the last word."""
    ada, bob = await new_profile(db, "Ada"), await new_profile(db, "Bob")
    async with acting_as(db, "authenticated", bob) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("select * from public.xp_timeline($1)", ada)
    async with acting_as(db, "authenticated", bob) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetchval("select public.dashboard_stats($1)", ada)
    async with acting_as(db, "anon") as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("select * from public.xp_timeline($1)", ada)


@pytest.mark.parametrize(
    "call",
    [
        "select * from public.xp_timeline($1, 'year')",
        "select * from public.xp_timeline($1, 'day', 0)",
        "select public.dashboard_stats($1, 'quarter')",
    ],
)
async def test_bad_periods_are_refused(db: Database, call: str) -> None:
    """Unknown granularities and period counts outside 1-366 are XPBAD."""
    pid = await new_profile(db, "Ada")
    from xpbase.errors import DomainError

    with pytest.raises(DomainError) as info:
        async with db.as_member(pid) as conn:
            await conn.fetch(call, pid)
    assert info.value.code == "invalid_argument"
