"""Monthly seasons per layer: assignment by occurred_at in UTC, scores as the season's net XP."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.helpers import acting_as, award, new_profile
from tests.sql.engine import add_penalty_activity, cached_totals, ledger_totals
from xpbase.db import Database

LAST_MOMENT_OF_OCTOBER = datetime(2025, 10, 31, 23, 59, 59, 999_999, tzinfo=UTC)
FIRST_MOMENT_OF_NOVEMBER = datetime(2025, 11, 1, tzinfo=UTC)


async def season(db: Database, season_id: int) -> dict[str, Any]:
    """One season row as a dict."""
    async with db.as_service() as conn:
        return dict(await conn.fetchrow("select * from public.seasons where id = $1", season_id))


async def test_month_boundary_splits_seasons_per_layer(db: Database) -> None:
    """23:59:59.999999 UTC on the 31st and 00:00 UTC on the 1st land in different seasons, in each layer."""
    pid = await new_profile(db)
    receipts = {
        (layer, at): await award(db, pid, activity, f"{layer}-{at:%m}", occurred_at=at)
        for layer, activity in (("cyber", "voice_minute"), ("reality", "event_attendance"))
        for at in (LAST_MOMENT_OF_OCTOBER, FIRST_MOMENT_OF_NOVEMBER)
    }
    assert len({r["season_id"] for r in receipts.values()}) == 4
    for (layer, at), receipt in receipts.items():
        row = await season(db, receipt["season_id"])
        assert row["layer_slug"] == layer
        assert row["starts_at"] <= at < row["ends_at"]
        assert row["name"] == f"2025-{at:%m} {layer}"
    october = await season(db, receipts["cyber", LAST_MOMENT_OF_OCTOBER]["season_id"])
    assert (october["starts_at"], october["ends_at"]) == (
        datetime(2025, 10, 1, tzinfo=UTC),
        FIRST_MOMENT_OF_NOVEMBER,
    )
    assert await cached_totals(db, pid) == await ledger_totals(db, pid)
    assert sorted((await cached_totals(db, pid))["seasons"].values()) == [10, 10, 50, 50]


async def test_awards_in_one_month_share_its_season(db: Database) -> None:
    """Awards on the 1st and the last day of a month add up in one season score."""
    pid = await new_profile(db)
    first = await award(db, pid, "voice_minute", "v1", occurred_at=FIRST_MOMENT_OF_NOVEMBER)
    last = await award(
        db, pid, "voice_minute", "v2", occurred_at=datetime(2025, 11, 30, 23, 59, 59, tzinfo=UTC)
    )
    assert first["season_id"] == last["season_id"]
    assert (first["season_xp"], last["season_xp"]) == (10, 20)


async def test_year_boundary_starts_a_new_season(db: Database) -> None:
    """December's season ends at 2026-01-01T00:00Z, where January's begins."""
    pid = await new_profile(db)
    december = await award(
        db, pid, "voice_minute", "v1", occurred_at=datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)
    )
    january = await award(db, pid, "voice_minute", "v2", occurred_at=datetime(2026, 1, 1, tzinfo=UTC))
    dec, jan = await season(db, december["season_id"]), await season(db, january["season_id"])
    assert dec["ends_at"] == jan["starts_at"] == datetime(2026, 1, 1, tzinfo=UTC)
    assert (dec["name"], jan["name"]) == ("2025-12 cyber", "2026-01 cyber")


async def test_session_time_zone_does_not_move_the_boundary(db: Database) -> None:
    """With the session in UTC+14 the season of 23:59:59 UTC on the 31st is still October's."""
    pid = await new_profile(db)
    async with acting_as(db, "service_role") as conn:
        await conn.execute("select set_config('timezone', 'Pacific/Kiritimati', true)")
        late = await conn.fetchval(
            "select public.award_xp(profile_id => $1, activity => 'voice_minute', idempotency_key => 'v1', "
            "occurred_at => $2)",
            pid,
            LAST_MOMENT_OF_OCTOBER,
        )
        starts = await conn.fetchval("select starts_at from public.seasons where id = $1", late["season_id"])
    assert starts == datetime(2025, 10, 1, tzinfo=UTC)
    assert late["occurred_at"] == "2025-10-31T23:59:59.999999Z"


async def test_concurrent_first_awards_of_a_month_create_one_season(db: Database) -> None:
    """Twenty members earning at the same time in a new month make one season per layer, not twenty."""
    profiles = [await new_profile(db) for _ in range(20)]
    receipts = await asyncio.gather(
        *(
            award(db, pid, "voice_minute", f"v-{pid}", occurred_at=FIRST_MOMENT_OF_NOVEMBER)
            for pid in profiles
        )
    )
    assert len({r["season_id"] for r in receipts}) == 1
    async with db.as_service() as conn:
        assert await conn.fetchval("select count(*) from public.seasons") == 1


async def test_penalty_larger_than_the_seasons_earnings_floors_its_score_at_zero(db: Database) -> None:
    """A penalty takes a season's score to zero at most; later earnings in that season count in full."""
    penalty = await add_penalty_activity(db, xp=-60)
    pid = await new_profile(db)
    october = await award(
        db, pid, "xp_purchase", "buy-oct", amount=100, occurred_at=datetime(2025, 10, 15, tzinfo=UTC)
    )
    hit = await award(db, pid, penalty, "pen-nov", occurred_at=datetime(2025, 11, 5, tzinfo=UTC))
    assert (hit["granted"], hit["total_xp"], hit["season_xp"]) == (-60, 40, 0)
    later = await award(
        db, pid, "xp_purchase", "buy-nov", amount=100, occurred_at=datetime(2025, 11, 6, tzinfo=UTC)
    )
    assert later["season_xp"] == 100
    scores = (await cached_totals(db, pid))["seasons"]
    assert scores == {october["season_id"]: 100, later["season_id"]: 100}
    assert await cached_totals(db, pid) == await ledger_totals(db, pid)


async def test_season_scores_are_readable_per_season(db: Database) -> None:
    """The season score rows name the season and hold the XP earned in it."""
    pid = await new_profile(db)
    await award(db, pid, "event_attendance", "e1", amount=70, occurred_at=LAST_MOMENT_OF_OCTOBER)
    await award(
        db, pid, "event_attendance", "e2", amount=30, occurred_at=LAST_MOMENT_OF_OCTOBER - timedelta(days=3)
    )
    async with acting_as(db, "authenticated", pid) as conn:
        rows = await conn.fetch(
            "select s.name, sc.xp from public.season_scores sc join public.seasons s on s.id = sc.season_id "
            "where sc.profile_id = $1",
            pid,
        )
    assert [tuple(r) for r in rows] == [("2025-10 reality", 100)]
