"""Season rules per layer and finalize_seasons: frozen ranks, rewards, notifications, idempotency."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from uuid import UUID

import asyncpg
import pytest

from tests.helpers import acting_as, award, new_profile
from tests.sql.test_roles import with_role
from xpbase.db import Database


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def season_of(db: Database, layer: str, moment: str) -> asyncpg.Record:
    async with db.as_service() as conn:
        return await conn.fetchrow(
            "select * from public.seasons where layer_slug = $1 and starts_at <= $2 and $2 < ends_at",
            layer,
            at(moment),
        )


async def test_default_seasons_are_utc_months(db: Database) -> None:
    """Without a changed rule, an award lands in the UTC month of its occurred_at."""
    pid = await new_profile(db, "Ada")
    receipt = await award(db, pid, "xp_purchase", "k", amount=10, occurred_at=at("2026-02-28T23:30:00"))
    season = await season_of(db, "cyber", "2026-02-28T23:30:00")
    assert receipt["season_id"] == season["id"]
    assert (season["starts_at"], season["ends_at"], season["name"]) == (
        at("2026-02-01T00:00:00"),
        at("2026-03-01T00:00:00"),
        "2026-02 cyber",
    )


@pytest.mark.parametrize(
    ("unit", "length", "anchor", "tz", "moment", "starts", "ends"),
    [
        ("week", 2, "2026-01-05", "UTC", "2026-01-20T10:00:00", "2026-01-19T00:00:00", "2026-02-02T00:00:00"),
        (
            "month",
            3,
            "2026-01-01",
            "UTC",
            "2026-05-15T00:00:00",
            "2026-04-01T00:00:00",
            "2026-07-01T00:00:00",
        ),
        (
            "month",
            1,
            "2026-01-01",
            "Europe/Berlin",
            "2026-02-28T23:30:00",
            "2026-02-28T23:00:00",
            "2026-03-31T22:00:00",
        ),
        ("day", 10, "2026-01-01", "UTC", "2025-12-25T00:00:00", "2025-12-22T00:00:00", "2026-01-01T00:00:00"),
    ],
)
async def test_season_length_is_configurable_per_layer(
    db: Database, unit: str, length: int, anchor: str, tz: str, moment: str, starts: str, ends: str
) -> None:
    """season_rules sets the length (days, weeks, months), anchor and time zone of a layer's seasons."""
    async with db.as_service() as conn:
        await conn.execute(
            "update public.season_rules set length_unit = $1, length = $2, anchor = $3::text::date,"
            " time_zone = $4"
            " where layer_slug = 'reality'",
            unit,
            length,
            anchor,
            tz,
        )
    pid = await new_profile(db, "Ada")
    await award(db, pid, "challenge_completed", "k", amount=50, occurred_at=at(moment))
    season = await season_of(db, "reality", moment)
    assert (season["starts_at"], season["ends_at"]) == (at(starts), at(ends))


async def ranked_season(db: Database) -> dict[str, UUID]:
    """A March 2026 cyber season: Cleo 500, Bea and Al 300 (tie), Dee 100, Eve with nothing."""
    names = {n: await new_profile(db, n) for n in ("Al", "Bea", "Cleo", "Dee", "Eve")}
    for i, (name, xp) in enumerate([("Bea", 300), ("Al", 300), ("Cleo", 500), ("Dee", 100)]):
        await award(
            db,
            names[name],
            "xp_purchase",
            f"s-{name}",
            amount=xp,
            occurred_at=at(f"2026-03-0{i + 1}T12:00:00"),
        )
    return names


async def test_finalize_freezes_ranks_and_rewards_the_top(db: Database) -> None:
    """finalize_seasons stores final ranks (ties share) and gives the configured XP, points, title, notice."""
    names = await ranked_season(db)
    result = await db.rpc("finalize_seasons", at=at("2026-04-03T00:05:00"))
    assert result["count"] == 1
    assert result["finalized"][0] | {"season_id": 0} == {
        "season_id": 0,
        "layer": "cyber",
        "name": "2026-03 cyber",
        "participants": 4,
        "rewarded": 4,
    }
    async with db.as_service() as conn:
        results = {
            r["profile_id"]: r
            for r in await conn.fetch(
                "select * from public.season_results where season_id = $1",
                result["finalized"][0]["season_id"],
            )
        }
        assert {n: results[p]["rank"] for n, p in names.items() if p in results} == {
            "Cleo": 1,
            "Bea": 2,
            "Al": 2,
            "Dee": 4,
        }
        cleo = results[names["Cleo"]]
        assert (cleo["reward_xp"], cleo["reward_points"], cleo["title"]) == (500, 500, "Cyber champion")
        assert (results[names["Al"]]["reward_xp"], results[names["Al"]]["title"]) == (300, "Cyber runner-up")
        profile = await conn.fetchrow("select xp, points from public.profiles where id = $1", names["Cleo"])
        assert (profile["xp"], profile["points"]) == (1000, 500 + 500 + 500)
        ledger = await conn.fetchrow("select * from public.xp_ledger where id = $1", cleo["ledger_id"])
        assert (ledger["activity_slug"], ledger["idempotency_key"], ledger["season_id"]) == (
            "season_reward_cyber",
            f"season_reward:{result['finalized'][0]['season_id']}:{names['Cleo']}",
            None,
        )
        note = await conn.fetchrow(
            "select title, data from public.notifications where profile_id = $1 and kind = 'season_result'",
            names["Cleo"],
        )
        assert note["title"] == "2026-03 cyber: rank 1"
        assert note["data"]["reward_xp"] == 500
        # The reward does not count for the season running when it was granted.
        assert (
            await conn.fetchval(
                "select count(*) from public.season_scores s join public.seasons z on z.id = s.season_id"
                " where z.starts_at = '2026-04-01Z'"
            )
            == 0
        )


async def test_finalize_is_idempotent_and_waits_for_the_end(db: Database) -> None:
    """A season is finalized once it ended the late-award horizon (48 h) ago, and once, however often."""
    names = await ranked_season(db)
    early = await db.rpc("finalize_seasons", at=at("2026-04-02T23:59:00"))
    assert early["count"] == 0
    first = await db.rpc("finalize_seasons", at=at("2026-04-03T00:00:00"))
    second = await db.rpc("finalize_seasons", at=at("2026-04-04T00:00:00"))
    assert (first["count"], second["count"]) == (1, 0)
    async with db.as_service() as conn:
        assert await conn.fetchval("select xp from public.profiles where id = $1", names["Cleo"]) == 1000
        assert (
            await conn.fetchval("select count(*) from public.notifications where kind = 'season_result'") == 4
        )


async def test_a_finalised_season_is_closed_to_late_awards_and_reversals(db: Database) -> None:
    """A late award dated inside a finalised season counts for all-time and layer XP, not for the season,
    and its receipt says so; reversing an award of that season leaves the archived board as it is."""
    names = await ranked_season(db)
    await db.rpc("finalize_seasons", at=at("2026-04-03T00:05:00"))
    season = await season_of(db, "cyber", "2026-03-15T00:00:00")
    async with db.as_service() as conn:
        scores_before = await conn.fetch(
            "select profile_id, xp from public.season_scores where season_id = $1 order by profile_id",
            season["id"],
        )
        results_before = await conn.fetch(
            "select profile_id, rank, xp from public.season_results where season_id = $1 order by profile_id",
            season["id"],
        )
    late = await award(
        db, names["Dee"], "xp_purchase", "late", amount=900, occurred_at=at("2026-03-20T12:00:00")
    )
    assert (late["season_closed"], late["season_id"], late["season_xp"], late["granted"]) == (
        True,
        None,
        None,
        900,
    )
    assert late["layers"][0]["season_amount"] == 0
    dee_purchase = await db.pool.fetchval("select id from public.xp_ledger where idempotency_key = 's-Dee'")
    reversal = await db.rpc("reverse_award", ledger_id=dee_purchase, reason="chargeback")
    assert (reversal["season_closed"], reversal["granted"]) == (True, -100)
    async with db.as_service() as conn:
        assert (
            await conn.fetch(
                "select profile_id, xp from public.season_scores where season_id = $1 order by profile_id",
                season["id"],
            )
            == scores_before
        )
        assert (
            await conn.fetch(
                "select profile_id, rank, xp from public.season_results"
                " where season_id = $1 order by profile_id",
                season["id"],
            )
            == results_before
        )
        dee = await conn.fetchrow("select xp from public.profiles where id = $1", names["Dee"])
        assert dee["xp"] == 100 + 900 - 100 + 100  # purchase, late award, reversal, Dee's 4th-place reward
    # An award in a season still running is unaffected.
    running = await award(db, names["Eve"], "xp_purchase", "now", amount=10)
    assert running["season_closed"] is False and running["season_id"] is not None


async def test_concurrent_finalizers_finalize_each_season_once(db: Database) -> None:
    """Two services finalizing at the same time split the seasons; nothing is rewarded twice."""
    pid = await new_profile(db, "Ada")
    for month in range(1, 7):
        await award(
            db, pid, "xp_purchase", f"m{month}", amount=10, occurred_at=at(f"2026-0{month}-10T00:00:00")
        )
    results = await asyncio.gather(
        *(db.rpc("finalize_seasons", at=at("2026-08-01T00:00:00")) for _ in range(3))
    )
    assert sum(r["count"] for r in results) == 6
    async with db.as_service() as conn:
        assert await conn.fetchval("select count(*) from public.season_results") == 6
        assert await conn.fetchval("select xp from public.profiles where id = $1", pid) == 60 + 6 * 500


async def test_finalize_is_for_service_role_only(db: Database) -> None:
    """Members and anon cannot call finalize_seasons; results are read like season scores."""
    names = await ranked_season(db)
    await db.rpc("finalize_seasons", at=at("2026-04-03T00:00:00"))
    async with db.as_member(names["Cleo"]) as conn:
        await conn.execute(
            "update public.profiles set leaderboard_visible = false where id = (select auth.uid())"
        )
    for role, viewer in (("anon", None), ("authenticated", names["Al"])):
        async with acting_as(db, role, viewer) as conn:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetchval("select public.finalize_seasons()")
        async with acting_as(db, role, viewer) as conn:
            assert await conn.fetchval("select count(*) from public.season_results") == 3
    async with acting_as(db, "authenticated", names["Cleo"]) as conn:
        assert await conn.fetchval("select count(*) from public.season_results") == 4


async def test_a_suspended_member_takes_no_place_and_no_reward_slot(db: Database) -> None:
    """Finalizing while the winner is suspended: the others are ranked among themselves, the suspended member
    gets the place they would see for themself and no reward, and the archive hides them while suspended."""
    names = await ranked_season(db)
    await db.rpc(
        "service_role_moderate",
        actor_id=await with_role(db, "moderator", "Mod"),
        action="suspend",
        profile_id=names["Cleo"],
        reason="Cheat",
        until=None,
    )
    result = await db.rpc("finalize_seasons", at=at("2026-04-03T00:05:00"))
    season_id = result["finalized"][0]["season_id"]
    assert result["finalized"][0]["participants"] == 3
    async with db.as_service() as conn:
        ranks = {
            r["profile_id"]: (r["rank"], r["reward_xp"])
            for r in await conn.fetch("select * from public.season_results where season_id = $1", season_id)
        }
    assert ranks[names["Bea"]] == (1, 500) and ranks[names["Al"]][0] == 1 and ranks[names["Dee"]][0] == 3
    assert ranks[names["Cleo"]] == (1, 0)
    listed = await db.rpc("list_season_results", role="anon", season_id=season_id)
    assert [item["display_name"] for item in listed["items"]] == ["Bea", "Al", "Dee"] or [
        item["display_name"] for item in listed["items"]
    ] == ["Al", "Bea", "Dee"]
