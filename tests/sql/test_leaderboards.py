"""Leaderboards: tie rule, paging, rank, around-me, hidden members by policy, and the three boards."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from tests.helpers import acting_as, award, new_profile
from tests.sql.test_roles import with_role
from xpbase.db import Database, member_claims
from xpbase.errors import DomainError

T0 = datetime(2026, 3, 1, tzinfo=UTC)


async def give(db: Database, pid: UUID, xp: int, minutes: int, activity: str = "xp_purchase") -> None:
    """Credit xp at T0 + minutes (so the moment the score was reached is known)."""
    await award(
        db, pid, activity, f"{pid}:{minutes}:{xp}", amount=xp, occurred_at=T0 + timedelta(minutes=minutes)
    )


async def hide(db: Database, pid: UUID) -> None:
    async with db.as_member(pid) as conn:
        await conn.execute(
            "update public.profiles set leaderboard_visible = false where id = (select auth.uid())"
        )


def rows(records: list[asyncpg.Record]) -> list[tuple[int, str, int]]:
    return [(r["rank"], r["display_name"], r["xp"]) for r in records]


async def board_as(
    db: Database, role: str, viewer: UUID | None, sql: str, *args: Any
) -> list[asyncpg.Record]:
    async with acting_as(db, role, viewer) as conn:
        return await conn.fetch(sql, *args)


@pytest.fixture
async def members(db: Database) -> dict[str, UUID]:
    """Cleo 500; Bea and Al 300 (Bea reached it first); Dee 100; Hid 1000 but hidden."""
    names = {}
    for name in ("Al", "Bea", "Cleo", "Dee", "Hid"):
        names[name] = await new_profile(db, name)
    await give(db, names["Bea"], 300, 1)
    await give(db, names["Al"], 300, 2)
    await give(db, names["Cleo"], 500, 3)
    await give(db, names["Dee"], 100, 4)
    await give(db, names["Hid"], 1000, 5)
    await hide(db, names["Hid"])
    return names


PUBLIC_VIEW = [(1, "Cleo", 500), (2, "Bea", 300), (2, "Al", 300), (4, "Dee", 100)]


@pytest.mark.parametrize("role", ["anon", "authenticated", "service_role"])
async def test_equal_xp_shares_a_rank_and_who_reached_it_first_is_listed_first(
    db: Database, members: dict[str, UUID], role: str
) -> None:
    """Bea and Al share rank 2, Bea first (she reached 300 first); the hidden member is left out."""
    viewer = members["Dee"] if role == "authenticated" else None
    got = await board_as(db, role, viewer, "select * from public.leaderboard()")
    assert rows(got) == PUBLIC_VIEW


async def test_hidden_member_sees_themself_ranked(db: Database, members: dict[str, UUID]) -> None:
    """The hidden member sees their own row (RLS lets them) and the others ranked below."""
    got = await board_as(db, "authenticated", members["Hid"], "select * from public.leaderboard()")
    assert rows(got) == [(1, "Hid", 1000), (2, "Cleo", 500), (3, "Bea", 300), (3, "Al", 300), (5, "Dee", 100)]
    me = await board_as(
        db, "authenticated", members["Hid"], "select public.leaderboard_rank($1)::text", members["Hid"]
    )
    assert json.loads(me[0][0])["rank"] == 1


@pytest.mark.parametrize("role", ["anon", "authenticated", "service_role"])
async def test_hidden_member_has_no_rank_and_no_neighbours_for_others(
    db: Database, members: dict[str, UUID], role: str
) -> None:
    """leaderboard_rank gives null and leaderboard_around nothing for a hidden member, to everyone else."""
    viewer = members["Al"] if role == "authenticated" else None
    rank = await board_as(db, role, viewer, "select public.leaderboard_rank($1)::text", members["Hid"])
    answer = json.loads(rank[0][0])
    assert (answer["rank"], answer["xp"], answer["total"]) == (None, None, 4)
    around = await board_as(db, role, viewer, "select * from public.leaderboard_around($1)", members["Hid"])
    assert around == []


async def test_hidden_profile_is_hidden_by_policy_not_only_by_the_functions(
    db: Database, members: dict[str, UUID]
) -> None:
    """Reading profiles, layer totals and season scores directly shows the hidden member to nobody else."""
    for role, viewer in (("anon", None), ("authenticated", members["Al"])):
        async with acting_as(db, role, viewer) as conn:
            for table in ("public.profiles", "public.profile_layers", "public.season_scores"):
                column = "id" if table == "public.profiles" else "profile_id"
                found = await conn.fetchval(
                    f"select count(*) from {table} where {column} = $1", members["Hid"]
                )
                assert found == 0, (role, table)


async def test_rank_and_total(db: Database, members: dict[str, UUID]) -> None:
    """leaderboard_rank: 1 + members with more XP; equal XP shares it; total counts the listed members."""
    got = await board_as(db, "anon", None, "select public.leaderboard_rank($1)::text", members["Al"])
    assert json.loads(got[0][0]) | {"profile_id": None} == {
        "profile_id": None,
        "board": "all_time",
        "layer": None,
        "season_id": None,
        "rank": 2,
        "xp": 300,
        "total": 4,
    }


async def test_paging(db: Database, members: dict[str, UUID]) -> None:
    """page 2 of size 2 continues the ranks of page 1."""
    got = await board_as(db, "anon", None, "select * from public.leaderboard('all_time', null, null, 2, 2)")
    assert rows(got) == [(2, "Al", 300), (4, "Dee", 100)]


async def test_around_me(db: Database, members: dict[str, UUID]) -> None:
    """leaderboard_around: the member and radius neighbours each side, ranked."""
    got = await board_as(
        db, "anon", None, "select * from public.leaderboard_around($1, radius => 1)", members["Bea"]
    )
    assert rows(got) == [(1, "Cleo", 500), (2, "Bea", 300), (2, "Al", 300)]


async def test_layer_and_season_boards(db: Database) -> None:
    """The layer board ranks layer XP; the season board ranks a season's XP (by occurred_at)."""
    ada, bob = await new_profile(db, "Ada"), await new_profile(db, "Bob")
    await give(db, ada, 200, 1, "challenge_completed")  # reality
    await give(db, bob, 100, 2, "challenge_completed")
    await give(db, bob, 900, 3)  # cyber
    reality = await board_as(db, "anon", None, "select * from public.leaderboard('layer', 'reality')")
    assert rows(reality) == [(1, "Ada", 200), (2, "Bob", 100)]
    async with db.as_service() as conn:
        season_id = await conn.fetchval(
            "select id from public.seasons where layer_slug = 'reality' and starts_at = '2026-03-01Z'"
        )
    season = await board_as(
        db, "anon", None, "select * from public.leaderboard('season', null, $1)", season_id
    )
    assert rows(season) == [(1, "Ada", 200), (2, "Bob", 100)]
    rank = await board_as(
        db, "anon", None, "select public.leaderboard_rank($1, 'season', null, $2)::text", bob, season_id
    )
    assert json.loads(rank[0][0])["rank"] == 2
    around = await board_as(
        db, "anon", None, "select * from public.leaderboard_around($1, 'layer', 'cyber')", bob
    )
    assert rows(around) == [(1, "Bob", 900)]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("select * from public.leaderboard('weekly')", "board must be"),
        ("select * from public.leaderboard('all_time', null, null, 0)", "page_size"),
        ("select * from public.leaderboard('all_time', null, null, 10, 0)", "page must"),
        ("select * from public.leaderboard('layer', 'astral')", "Unknown layer"),
        ("select * from public.leaderboard('season', null, 999999)", "Unknown season"),
        ("select * from public.leaderboard_around(gen_random_uuid(), radius => 51)", "radius"),
    ],
)
async def test_bad_arguments_are_refused(db: Database, call: str, message: str) -> None:
    """Unknown boards, layers, seasons and out-of-range paging are XPBAD."""
    with pytest.raises(DomainError) as info:
        async with db.as_anon() as conn:
            await conn.fetch(call)
    assert info.value.code == "invalid_argument"
    assert message in info.value.message


@pytest.mark.parametrize("board", ["all_time", "layer", "season"])
async def test_rank_and_around_agree_with_the_full_board(db: Database, board: str) -> None:
    """For every member and viewer, rank and around-me equal the slice of the full board around them."""
    rng = random.Random(4)
    pids = []
    for i in range(24):
        pid = await new_profile(db, f"M{i:02d}")
        pids.append(pid)
        for k in range(rng.randint(0, 3)):
            await give(db, pid, rng.choice([10, 20, 30]), rng.randint(0, 50) * 10 + k)
    for pid in rng.sample(pids, 5):
        await hide(db, pid)
    # Members who leave this board alone, or another board (issue 13), and the counts that follow them.
    scope_of = {"all_time": {"board": "all_time"}, "layer": {"board": "layer", "scope": "cyber"}}
    scope_of["season"] = {"board": "season", "scope": "cyber"}
    for i, pid in enumerate(rng.sample(pids, 6)):
        other = {"board": "layer", "scope": "reality"} if i % 2 else {"board": "server", "scope": "1"}
        await set_visibility(db, pid, hidden_boards=[scope_of[board], other] if i < 4 else [other])
    # Suspended members (issue 13) leave the board too, hidden or not; an ended suspension hides nobody.
    suspended = rng.sample(pids, 4)
    for pid in suspended:
        await suspend(db, pid)
    await db.pool.execute(
        "update public.moderation_actions set created_at = now() - interval '3 days',"
        " until = now() - interval '1 day' where profile_id = $1",
        suspended[0],
    )
    scope: tuple[Any, Any] = (None, None)
    if board == "layer":
        scope = ("cyber", None)
    elif board == "season":
        async with db.as_service() as conn:
            scope = (None, await conn.fetchval("select id from public.seasons where layer_slug = 'cyber'"))
    for role, viewer in [("anon", None), ("authenticated", pids[0]), ("authenticated", pids[-1])]:
        async with acting_as(db, role, viewer) as conn:
            full = await conn.fetch("select * from public.leaderboard($1, $2, $3, 100)", board, *scope)
            positions = {r["profile_id"]: i for i, r in enumerate(full)}
            for pid in pids:
                rank = json.loads(
                    await conn.fetchval(
                        "select public.leaderboard_rank($1, $2, $3, $4)::text", pid, board, *scope
                    )
                )
                around = await conn.fetch(
                    "select * from public.leaderboard_around($1, $2, $3, $4, 2)", pid, board, *scope
                )
                if pid not in positions:
                    assert rank["rank"] is None and around == []
                    continue
                assert pid not in suspended[1:] or pid == viewer
                at = positions[pid]
                assert rank["rank"] == full[at]["rank"]
                assert rank["total"] == len(full)
                assert [tuple(r) for r in around] == [tuple(r) for r in full[max(0, at - 2) : at + 3]]


async def test_leaderboard_counts_stay_exact_through_awards_corrections_and_hiding(db: Database) -> None:
    """After awards, penalties, resets and hiding, counts plus deltas, compacted or not, equal a rebuild."""
    rng = random.Random(7)
    pids = [await new_profile(db, f"C{i}") for i in range(12)]
    for step in range(80):
        pid = rng.choice(pids)
        action = rng.random()
        if action < 0.6:
            if rng.random() < 0.5:
                await give(db, pid, rng.choice([10, 63, 64, 100, 999, 1000]), step, "challenge_completed")
            else:
                await give(db, pid, rng.choice([1, 4096, 70_000, 99_999]), step)
        elif action < 0.75:
            await db.rpc(
                "admin_adjust_xp",
                profile_id=pid,
                amount=-rng.randint(1, 500),
                reason="test",
                idempotency_key=f"adj{step}",
            )
        elif action < 0.8:
            await db.rpc("admin_reset_xp", profile_id=pid, reason="test", idempotency_key=f"reset{step}")
        elif action < 0.9:
            async with db.as_member(pid) as conn:
                await conn.execute(
                    "update public.profiles set leaderboard_visible = not leaderboard_visible"
                    " where id = (select auth.uid())"
                )
        else:
            # Leaving (or coming back to) single boards: all-time, a layer's board, a layer's season boards.
            boards = [
                {"board": "all_time"},
                {"board": "layer", "scope": "cyber"},
                {"board": "season", "scope": "cyber"},
            ]
            await set_visibility(db, pid, hidden_boards=rng.sample(boards, rng.randint(0, 2)))
    query = (
        "select board, scope, level, bucket, sum(n) from ("
        " select board, scope, level, bucket, members as n from public.leaderboard_counts"
        " union all select board, scope, level, bucket, delta"
        " from public.leaderboard_count_deltas where level >= 0"
        " union all select board, scope, l.level, bucket >> (6 * l.level), delta"
        " from public.leaderboard_count_deltas d cross join generate_series(0, 7) as l (level)"
        " where d.level = -1) x"
        " group by 1, 2, 3, 4 having sum(n) <> 0 order by 1, 2, 3, 4"
    )
    async with db.as_service() as conn:
        kept = [tuple(r) for r in await conn.fetch(query)]
        assert await conn.fetchval("select count(*) from public.leaderboard_count_deltas") > 0
    folded = await db.rpc("service_role_compact_leaderboard_counts")
    assert folded > 0
    async with db.as_service() as conn:
        assert await conn.fetchval("select count(*) from public.leaderboard_count_deltas") == 0
        compacted = [tuple(r) for r in await conn.fetch(query)]
    async with db.pool.acquire() as conn:
        await conn.execute("select private.rebuild_leaderboard_counts()")
        rebuilt = [tuple(r) for r in await conn.fetch(query)]
    assert kept == compacted == rebuilt
    assert any(board == "season" for board, *_ in kept) and any(board == "layer" for board, *_ in kept)


async def suspend(db: Database, pid: UUID, until: str | None = "1 day") -> None:
    """A suspension of ``pid`` (a day, or a ban with until None) recorded by the bot for a new moderator
    (who stays off the boards)."""
    moderator = await with_role(db, "moderator", f"Mod {pid}")
    await db.pool.execute("update public.profiles set leaderboard_visible = false where id = $1", moderator)
    await db.rpc(
        "service_role_moderate",
        actor_id=moderator,
        action="suspend",
        profile_id=pid,
        reason="Test suspension",
        until=None if until is None else datetime.now(UTC) + timedelta(days=1),
    )


async def hidden_admin(db: Database) -> UUID:
    admin = await with_role(db, "admin", "Lifter")
    await db.pool.execute("update public.profiles set leaderboard_visible = false where id = $1", admin)
    return admin


async def views_of(db: Database, members: dict[str, UUID], who: str) -> list[tuple[str, Any, Any]]:
    """For anon, another member and service_role: the board, who's rank and who's around."""
    seen = []
    for role, viewer in (("anon", None), ("authenticated", members["Dee"]), ("service_role", None)):
        async with acting_as(db, role, viewer) as conn:
            board = rows(await conn.fetch("select * from public.leaderboard()"))
            rank = json.loads(await conn.fetchval("select public.leaderboard_rank($1)::text", members[who]))
            around = rows(
                await conn.fetch("select * from public.leaderboard_around($1, radius => 1)", members[who])
            )
            seen.append((role, (board, rank["rank"], rank["total"]), around))
    return seen


async def set_visibility(db: Database, pid: UUID, **changes: Any) -> Any:
    """public.set_leaderboard_visibility as the member ``pid``."""
    return await db.rpc(
        "set_leaderboard_visibility", role="authenticated", claims=member_claims(pid), **changes
    )
