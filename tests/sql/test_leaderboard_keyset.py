"""Leaderboards by cursor (supabase/sql/62_leaderboard_keyset.sql) and the offset pages' limit (issue 18).

A board of a few hundred members with many ties, walked page by page with
``public.leaderboard_after``, equals the offset pages of ``public.leaderboard``
row for row and rank for rank, for anon, a hidden member and a suspended one,
on the three boards; bad cursors are XPBAD; offset pages stop at 10,000 rows.
"""

from __future__ import annotations

import itertools
import json
from typing import Any
from uuid import UUID

import pytest

from tests.helpers import acting_as
from tests.sql.test_leaderboards import suspend
from xpbase.db import Database
from xpbase.errors import DomainError

MEMBERS = 260

#: 260 members through the real RPCs in two statements: XP from a few values (long ties), reached at one of
#: five moments with microseconds (so ties on XP and moment too, broken by id), 20% also in the reality layer.
CROWD = """
with made as (
  select g, public.ensure_profile('discord', 'crowd-' || g, 'Crowd ' || g) as id
    from generate_series(1, $1) as g
)
select m.g, m.id,
       public.award_xp(m.id, 'xp_purchase', 'crowd-cyber-' || m.g, 10 * (1 + m.g % 6),
                       timestamptz '2026-03-02Z' + (m.g % 5) * interval '17 minutes 0.123457 seconds'),
       case when m.g % 5 = 0 then
         public.award_xp(m.id, 'challenge_completed', 'crowd-reality-' || m.g, 25 * (1 + m.g % 3),
                         timestamptz '2026-03-03Z' + (m.g % 4) * interval '1 hour 0.000001 seconds')
       end
  from made m order by m.g
"""


@pytest.fixture
async def crowd(db: Database) -> dict[str, Any]:
    """The crowd; 12 members hide, 3 are suspended (one of those hides too), one's suspension has ended."""
    async with db.as_service() as conn:
        ids = [r["id"] for r in await conn.fetch(CROWD, MEMBERS)]
        season_id = await conn.fetchval(
            "select id from public.seasons where layer_slug = 'cyber' and starts_at = '2026-03-01Z'"
        )
    hidden = ids[7::20]
    await db.pool.execute(
        "update public.profiles set leaderboard_visible = false where id = any($1::uuid[])", hidden
    )
    suspended = [ids[3], ids[11], hidden[2], ids[30]]
    for pid in suspended:
        await suspend(db, pid)
    await db.pool.execute(
        "update public.moderation_actions set created_at = now() - interval '3 days',"
        " until = now() - interval '1 day' where profile_id = $1",
        suspended[-1],
    )
    return {"ids": ids, "hidden": hidden, "suspended": suspended[:-1], "season_id": season_id}


async def walk(conn: Any, page_size: int, *scope: Any) -> list[dict[str, Any]]:
    """Every page of a board by cursor; each page's items."""
    pages, after = [], None
    while True:
        page = json.loads(
            await conn.fetchval(
                "select public.leaderboard_after($1, $2, $3, $4, $5)::text", *scope, page_size, after
            )
        )
        pages.append(page["items"])
        after = page["next"]
        if after is None:
            return pages
        assert len(page["items"]) == page_size


async def offset_pages(conn: Any, page_size: int, *scope: Any) -> list[list[dict[str, Any]]]:
    """Every page of a board by page number, as JSON rows like leaderboard_after's items."""
    pages, page = [], 1
    while True:
        rows = await conn.fetch(
            "select to_jsonb(b)::text from public.leaderboard($1, $2, $3, $4, $5) b", *scope, page_size, page
        )
        pages.append([json.loads(r[0]) for r in rows])
        if len(rows) < page_size:
            # A board of a whole number of pages ends with an empty one (a cursor knows it is the last).
            return pages[:-1] if not rows and page > 1 else pages
        page += 1


@pytest.mark.parametrize("board", ["all_time", "layer", "season"])
async def test_walking_by_cursor_equals_the_offset_pages(
    db: Database, crowd: dict[str, Any], board: str
) -> None:
    """Page by page, rows and ranks by cursor equal the offset pages, for anon, a hidden and a suspended
    member; hidden and suspended members are left out but for themselves; ties span page boundaries."""
    scope = {
        "all_time": ("all_time", None, None),
        "layer": ("layer", "reality", None),
        "season": ("season", None, crowd["season_id"]),
    }[board]
    hidden_viewer, suspended_viewer = crowd["hidden"][1], crowd["suspended"][0]
    left_out = set(crowd["hidden"]) | set(crowd["suspended"])
    for role, viewer in (
        ("anon", None),
        ("authenticated", hidden_viewer),
        ("authenticated", suspended_viewer),
    ):
        async with acting_as(db, role, viewer) as conn:
            by_offset = await offset_pages(conn, 100, *scope)
            board_rows = [row for page in by_offset for row in page]
            assert len(board_rows) > (30 if board == "layer" else 200)
            for page_size in (7, 100):
                by_cursor = await walk(conn, page_size, *scope)
                assert [row for page in by_cursor for row in page] == board_rows, (role, page_size)
                if page_size == 7:
                    assert by_cursor == await offset_pages(conn, 7, *scope)
                    # Some page opens inside a tie: its first rank is the previous page's last.
                    assert any(p[0]["rank"] == q[-1]["rank"] for q, p in itertools.pairwise(by_cursor))
            listed = {UUID(row["profile_id"]) for row in board_rows}
            assert listed & left_out == ({viewer} & listed if viewer else set())
            if board == "all_time":
                assert viewer is None or viewer in listed
                assert crowd["ids"][30] in listed  # the suspension that ended hides nobody


#: Not the exact form leaderboard_after writes: empty, partial, signs, leading zeros, upper case, spaces,
#: line ends, extra parts, exponents, an XP past bigint, 17-digit microseconds, too long.
BAD_CURSORS = [
    "",
    "x",
    "10",
    "10.0",
    "10.0.not-a-uuid",
    "010.0.00000000-0000-0000-0000-000000000000",
    "+10.0.00000000-0000-0000-0000-000000000000",
    "-10.0.00000000-0000-0000-0000-000000000000",
    "10.00.00000000-0000-0000-0000-000000000000",
    "10.-0.00000000-0000-0000-0000-000000000000",
    "10.0.0000000000000000000000000000000",
    "10.0.ABCDEF00-0000-0000-0000-000000000000",
    "10.0.00000000-0000-0000-0000-000000000000 ",
    "10.0.00000000-0000-0000-0000-000000000000\n",
    " 10.0.00000000-0000-0000-0000-000000000000",
    "10.0.00000000-0000-0000-0000-000000000000.1",
    "10.1e6.00000000-0000-0000-0000-000000000000",
    "9223372036854775808.0.00000000-0000-0000-0000-000000000000",
    "10.12345678901234567.00000000-0000-0000-0000-000000000000",
    "10" * 40,
]


async def test_bad_cursors_are_refused(db: Database) -> None:
    """Anything but the exact form leaderboard_after writes is XPBAD, with a message naming the cursor."""
    for after in BAD_CURSORS:
        with pytest.raises(DomainError) as info:
            async with db.as_anon() as conn:
                await conn.fetchval("select public.leaderboard_after(after => $1)", after)
        assert info.value.error.sqlstate == "XPBAD", after
        assert "not a leaderboard cursor" in info.value.message


async def test_a_cursor_names_a_place_not_a_member(db: Database, crowd: dict[str, Any]) -> None:
    """A well-formed cursor for any place reads on from there: after the top, the whole board; after the
    bottom, nothing; and after the last row of a page whose member has since moved up, the same next page."""
    assert len(crowd["ids"]) == MEMBERS
    async with acting_as(db, "anon") as conn:
        call = "select public.leaderboard_after(page_size => $1, after => $2)::text"
        everyone = json.loads(await conn.fetchval(call, 100, None))
        top = json.loads(
            await conn.fetchval(call, 100, "9223372036854775807.0.00000000-0000-0000-0000-000000000000")
        )
        assert top == everyone
        bottom = json.loads(await conn.fetchval(call, 5, "0.-1.00000000-0000-0000-0000-000000000000"))
        assert bottom == {"items": [], "next": None}
        first = json.loads(await conn.fetchval(call, 10, None))
        second = json.loads(await conn.fetchval(call, 10, first["next"]))
        last = UUID(first["items"][-1]["profile_id"])
        assert first["next"].endswith(f".{last}")
    await db.rpc("award_xp", profile_id=last, activity="xp_purchase", idempotency_key="moved", amount=500)
    async with acting_as(db, "anon") as conn:
        again = json.loads(await conn.fetchval(call, 10, first["next"]))
    assert [r["profile_id"] for r in again["items"]] == [r["profile_id"] for r in second["items"]]


async def test_an_empty_board_has_no_rows_and_no_next(db: Database) -> None:
    async with db.as_anon() as conn:
        got = json.loads(await conn.fetchval("select public.leaderboard_after()::text"))
    assert got == {"items": [], "next": None}


async def test_offset_pages_stop_at_the_first_10000_rows(db: Database) -> None:
    """page * page_size above 10,000 is XPBAD with a message that points at leaderboard_after."""
    call = "select count(*) from public.leaderboard('all_time', null, null, $1, $2)"
    for page_size, page in ((100, 100), (1, 10000), (50, 200)):
        async with db.as_anon() as conn:
            assert await conn.fetchval(call, page_size, page) == 0
    for page_size, page in ((100, 101), (1, 10001), (7, 1429), (100, 2147483647)):
        with pytest.raises(DomainError) as info:
            async with db.as_anon() as conn:
                await conn.fetchval(call, page_size, page)
        assert info.value.error.sqlstate == "XPBAD"
        assert "first 10000 rows" in info.value.message and "leaderboard_after" in info.value.message
