"""Who is on which board (supabase/sql/61_leaderboard_visibility.sql): suspended members off every board while
the suspension is in force, boards left one by one, and what a visibility toggle costs the counts."""

from __future__ import annotations

import json
from datetime import timedelta
from uuid import UUID

import asyncpg
import pytest

from tests.helpers import acting_as, award, new_profile
from tests.sql import test_leaderboards
from tests.sql.test_leaderboards import (
    PUBLIC_VIEW,
    T0,
    board_as,
    give,
    hidden_admin,
    rows,
    set_visibility,
    suspend,
    views_of,
)
from xpbase.db import Database, member_claims
from xpbase.errors import DomainError

#: The five members of the leaderboard tests (a fixture).
members = test_leaderboards.members


async def test_a_suspended_member_is_off_every_board_until_the_suspension_ends(
    db: Database, members: dict[str, UUID]
) -> None:
    """While Cleo is suspended nobody sees her (ranks close up); she reappears when it is lifted or ends."""
    await suspend(db, members["Cleo"])
    for role, (board, rank, total), around in await views_of(db, members, "Cleo"):
        assert board == [(1, "Bea", 300), (1, "Al", 300), (3, "Dee", 100)], role
        assert (rank, total, around) == (None, 3, []), role
    for role, (_, rank, total), around in await views_of(db, members, "Al"):
        assert (rank, total, around) == (1, 3, [(1, "Bea", 300), (1, "Al", 300), (3, "Dee", 100)]), role
    async with acting_as(db, "anon", None) as conn:
        layer = rows(await conn.fetch("select * from public.leaderboard('layer', 'cyber')"))
        assert "Cleo" not in [name for _, name, _ in layer]
    # Cleo still sees herself, as a member who hides does.
    own = await board_as(db, "authenticated", members["Cleo"], "select * from public.leaderboard()")
    assert rows(own)[0] == (1, "Cleo", 500)
    # Lifted: back at once.
    async with db.as_service() as conn:
        await conn.execute(
            "select public.service_role_moderate($1, 'unsuspend', $2, 'Sorted')",
            await hidden_admin(db),
            members["Cleo"],
        )
    for role, (board, rank, total), _ in await views_of(db, members, "Cleo"):
        assert (board, rank, total) == (PUBLIC_VIEW, 1, 4), role


async def test_a_suspension_that_has_ended_hides_nobody_without_any_job(
    db: Database, members: dict[str, UUID]
) -> None:
    """A suspension whose until has passed stops hiding the member by itself (nothing runs at its end)."""
    await suspend(db, members["Cleo"])
    await suspend(db, members["Al"], until=None)  # a ban: off the boards until lifted
    await db.pool.execute(
        "update public.moderation_actions set created_at = now() - interval '3 days',"
        " until = now() - interval '1 day' where profile_id = $1",
        members["Cleo"],
    )
    for role, (board, rank, total), _ in await views_of(db, members, "Cleo"):
        assert (board, rank, total) == ([(1, "Cleo", 500), (2, "Bea", 300), (3, "Dee", 100)], 1, 3), role


async def test_a_member_leaves_one_board_and_stays_on_the_others(
    db: Database, members: dict[str, UUID]
) -> None:
    """Cleo leaves the all-time board only: gone there (ranks close up), still first on her layer's board."""
    answer = await set_visibility(db, members["Cleo"], hidden_boards=[{"board": "all_time"}])
    assert answer == {"visible": True, "hidden_boards": [{"board": "all_time", "scope": ""}]}
    for role, (board, rank, total), around in await views_of(db, members, "Cleo"):
        assert board == [(1, "Bea", 300), (1, "Al", 300), (3, "Dee", 100)], role
        assert (rank, total, around) == (None, 3, []), role
    for role, viewer in (("anon", None), ("service_role", None), ("authenticated", members["Dee"])):
        async with acting_as(db, role, viewer) as conn:
            layer = rows(await conn.fetch("select * from public.leaderboard('layer', 'cyber')"))
            assert layer[0] == (1, "Cleo", 500), role
            rank = json.loads(
                await conn.fetchval(
                    "select public.leaderboard_rank($1, 'layer', 'cyber')::text", members["Dee"]
                )
            )
            assert (rank["rank"], rank["total"]) == (4, 4), role
    # Back on every board: the counts move back too.
    assert (await set_visibility(db, members["Cleo"], hidden_boards=[]))["hidden_boards"] == []
    for role, (board, rank, total), _ in await views_of(db, members, "Cleo"):
        assert (board, rank, total) == (PUBLIC_VIEW, 1, 4), role


async def test_visibility_per_board_is_the_members_own_and_validated(
    db: Database, members: dict[str, UUID]
) -> None:
    """A member writes only their own rows (policy); bad boards and scopes are refused and change nothing."""
    async with db.as_member(members["Al"]) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                "insert into public.leaderboard_hidden_boards (profile_id, board) values ($1, 'all_time')",
                members["Bea"],
            )
    for bad in (
        [{"board": "weekly"}],
        [{"board": "layer", "scope": "nowhere"}],
        [{"board": "server", "scope": "12ab"}],
        [{"board": "all_time", "scope": "x"}],
        [{"board": "all_time", "extra": 1}],
        [{"board": "server", "scope": str(i)} for i in range(101)],
    ):
        with pytest.raises(DomainError) as caught:
            await set_visibility(db, members["Al"], hidden_boards=bad)
        assert caught.value.error.sqlstate == "XPBAD"
    assert await db.rpc(
        "my_leaderboard_visibility", role="authenticated", claims=member_claims(members["Al"])
    ) == {
        "visible": True,
        "hidden_boards": [],
    }
    with pytest.raises(DomainError):
        await db.rpc("my_leaderboard_visibility", role="anon")


@pytest.mark.parametrize("xp", [7, 4096 + 63, 99_999])
async def test_a_visibility_toggle_appends_one_count_row_per_board(db: Database, xp: int) -> None:
    """Hiding, showing and leaving one board append one leaderboard_count_deltas row per board the member is
    on (issue 18: it was 8 per board), whatever the member's XP and however many others are on the board."""
    others = [await new_profile(db, f"O{i}") for i in range(3)]
    for i, pid in enumerate(others):
        await give(db, pid, 100 * (i + 1), i)
    pid = await new_profile(db, "Toggler")
    # Three months of cyber XP and one reality award: all-time, two layer boards, four season boards.
    for month in range(3):
        await award(
            db, pid, "xp_purchase", f"t{month}", amount=xp, occurred_at=T0 + timedelta(days=31 * month)
        )
    await award(db, pid, "challenge_completed", "t-real", amount=max(10, min(xp, 1000)), occurred_at=T0)
    async with db.as_service() as conn:
        boards = await conn.fetchval(
            "select count(*) from public.leaderboard_entries where profile_id = $1 and visible", pid
        )
    assert boards == 7

    async def appended(sql: str) -> int:
        before = await db.pool.fetchval("select count(*) from public.leaderboard_count_deltas")
        async with db.as_member(pid) as conn:
            await conn.execute(sql, *([pid] if "$1" in sql else []))
        return int(await db.pool.fetchval("select count(*) from public.leaderboard_count_deltas")) - before

    assert await appended("update public.profiles set leaderboard_visible = false where id = $1") == boards
    assert await appended("update public.profiles set leaderboard_visible = true where id = $1") == boards
    assert (
        await appended(
            'select public.set_leaderboard_visibility(hidden_boards => \'[{"board": "all_time"}]\')'
        )
        == 1
    )
    assert await appended("select public.set_leaderboard_visibility(hidden_boards => '[]')") == 1
