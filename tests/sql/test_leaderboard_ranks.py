"""public.leaderboard_rank and public.leaderboard_around (supabase/sql/63_leaderboard_ranks.sql, issue 16
item 7) against their PL/pgSQL definitions before (tests/sql/reference/leaderboard_rank_around_plpgsql.sql).

Two databases cloned from the same template, the reference loaded into one. Hypothesis builds the same random
board in both, inside a transaction that rolls back: members with few distinct scores and moments (long ties,
ties broken by the profile id), on the all-time, a layer and a season board; members who hide themselves, who
left single boards, under a suspension in force or ended; a moderator (who may read every profile); count
changes folded or not. Every member's rank and around-me (radius 0, 1 and 3), an unknown member's, and bad
arguments are asked of both as anon, service_role, the moderator and members (a hidden one, a suspended one):
the answers, or the SQLSTATE and message, must be equal.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pytest_postgresql.executors.noop import NoopExecutor

from tests.conftest import cloned_database
from xpbase.db import member_claims, switch_role

REFERENCE = Path(__file__).parent / "reference" / "leaderboard_rank_around_plpgsql.sql"
T0 = datetime(2026, 3, 1, tzinfo=UTC)
SEASON_ID = 900001

MEMBER = st.fixed_dictionaries(
    {
        "xp": st.sampled_from([0, 10, 10, 10, 63, 64, 4096, 70_000]),
        "at": st.integers(0, 1),  # minutes after T0: two moments, so ties on reached_at too
        "layer_xp": st.none() | st.sampled_from([0, 5, 5, 200]),
        "season_xp": st.none() | st.sampled_from([0, 5, 5, 200]),
        "visible": st.booleans() | st.just(True),
        "left": st.sets(st.sampled_from(["all_time", "layer", "season"]), max_size=2),
        "suspended": st.sampled_from([None, None, None, "in force", "ended"]),
    }
)
BOARD = st.fixed_dictionaries(
    {
        "members": st.lists(MEMBER, min_size=1, max_size=9),
        "moderator": st.booleans(),
        # Changes after the counts were built: members who hide or show themselves (unfolded count changes).
        "toggles": st.lists(st.integers(0, 8), max_size=3),
        "compact": st.booleans(),
    }
)


@pytest.fixture
async def two_databases(
    xpbase_template: NoopExecutor,
) -> AsyncIterator[tuple[asyncpg.Connection, asyncpg.Connection]]:
    """(current definitions, reference definitions): superuser connections to two clones of the template."""
    with (
        cloned_database(xpbase_template, "xpbase_rank_new") as new_url,
        cloned_database(xpbase_template, "xpbase_rank_ref") as ref_url,
    ):
        new_conn = await asyncpg.connect(new_url)
        ref_conn = await asyncpg.connect(ref_url)
        try:
            await ref_conn.execute(REFERENCE.read_text())
            yield new_conn, ref_conn
        finally:
            await new_conn.close()
            await ref_conn.close()


def member_id(i: int) -> uuid.UUID:
    """Ids in a fixed order unrelated to the list order, so ties are broken by id in both directions."""
    return uuid.UUID(int=((i * 7919) % 101) << 64 | i)


async def build(conn: asyncpg.Connection, board: dict[str, Any]) -> list[uuid.UUID]:
    """The board's rows written directly (no triggers), the counts rebuilt, then the toggles through the count
    triggers, then maybe a compaction. Returns the member ids (the moderator last, when there is one)."""
    members = board["members"]
    ids = [member_id(i) for i in range(len(members))]
    await conn.execute("set local session_replication_role = replica")
    await conn.execute(
        "insert into public.seasons (id, layer_slug, name, starts_at, ends_at) overriding system value"
        " values ($1, 'cyber', 'Test season', $2, $3)",
        SEASON_ID,
        T0,
        T0 + timedelta(days=31),
    )
    for pid, m in zip(ids, members, strict=True):
        at = T0 + timedelta(minutes=m["at"])
        await conn.execute(
            "insert into public.profiles (id, display_name, xp, level, tier, points, xp_reached_at,"
            " leaderboard_visible) values ($1, $2, $3, 1, null, 0, $4, $5)",
            pid,
            f"M{pid.int & 0xFF}",
            m["xp"],
            at,
            m["visible"],
        )
        if m["layer_xp"] is not None:
            await conn.execute(
                "insert into public.profile_layers (profile_id, layer_slug, xp, status, reached_at)"
                " values ($1, 'cyber', $2, 'active', $3)",
                pid,
                m["layer_xp"],
                at,
            )
        if m["season_xp"] is not None:
            await conn.execute(
                "insert into public.season_scores (season_id, profile_id, xp, reached_at)"
                " values ($1, $2, $3, $4)",
                SEASON_ID,
                pid,
                m["season_xp"],
                at,
            )
        for left in m["left"]:
            await conn.execute(
                "insert into public.leaderboard_hidden_boards (profile_id, board, scope) values ($1, $2, $3)",
                pid,
                left,
                "" if left == "all_time" else "cyber",
            )
        if m["suspended"]:
            until = T0 if m["suspended"] == "ended" else datetime.now(UTC) + timedelta(days=1)
            await conn.execute(
                "insert into public.leaderboard_suspensions (moderation_action_id, profile_id, until)"
                " values ((select coalesce(max(moderation_action_id), 0) + 1"
                " from public.leaderboard_suspensions), $1, $2)",
                pid,
                until,
            )
    if board["moderator"]:
        moderator = uuid.UUID(int=0xABC)
        await conn.execute(
            "insert into public.profiles (id, display_name, xp, level, tier, points, xp_reached_at,"
            " leaderboard_visible, role) values ($1, 'Mod', 0, 1, null, 0, $2, false, 'moderator')",
            moderator,
            T0,
        )
        ids.append(moderator)
    await conn.execute("set local session_replication_role = origin")
    await conn.execute("select private.rebuild_leaderboard_counts()")
    for i in board["toggles"]:
        await conn.execute(
            "update public.profiles set leaderboard_visible = not leaderboard_visible where id = $1",
            ids[i % len(members)],
        )
    if board["compact"]:
        await conn.execute("select private.compact_leaderboard_counts()")
    return ids


CALLS = [
    ("select public.leaderboard_rank($1, $2, $3, $4)::text", None),
    ("select * from public.leaderboard_around($1, $2, $3, $4, $5)", 0),
    ("select * from public.leaderboard_around($1, $2, $3, $4, $5)", 1),
    ("select * from public.leaderboard_around($1, $2, $3, $4, $5)", 3),
]
SCOPES: list[tuple[str | None, str | None, int | None]] = [
    ("all_time", None, None),
    ("layer", "cyber", None),
    ("layer", None, None),  # the default layer
    ("season", None, SEASON_ID),
    ("season", "cyber", SEASON_ID),
    ("season", "cyber", None),  # the running season (none here: an empty board)
]
BAD: list[tuple[str | None, str | None, int | None, int | None]] = [
    ("weekly", None, None, 5),
    (None, None, None, 5),
    ("layer", "astral", None, 5),
    ("season", None, 999_999, 5),
    ("season", "reality", SEASON_ID, 5),
    ("all_time", None, None, 51),
    ("all_time", None, None, -1),
    ("all_time", None, None, None),
]


async def ask(conn: asyncpg.Connection, sql: str, *args: Any) -> Any:
    """The rows (the rank as parsed JSON), or (SQLSTATE, message) of the error, inside a savepoint."""
    try:
        async with conn.transaction():
            rows = await conn.fetch(sql, *args)
    except asyncpg.PostgresError as exc:
        return (exc.sqlstate, str(exc))
    return [json.loads(r[0]) if "leaderboard_rank" in sql else tuple(r) for r in rows]


async def answers(conn: asyncpg.Connection, ids: list[uuid.UUID]) -> dict[str, Any]:
    """Every call of CALLS for every member and scope, and the bad arguments, for each viewer."""
    hidden = [
        pid
        for pid in ids
        if not await conn.fetchval("select leaderboard_visible from public.profiles where id = $1", pid)
    ]
    suspended = [r[0] for r in await conn.fetch("select profile_id from public.leaderboard_suspensions")]
    viewers: list[tuple[str, uuid.UUID | None]] = [
        ("anon", None),
        ("service_role", None),
        ("authenticated", ids[0]),
    ]
    viewers += [("authenticated", pid) for pid in (hidden[:1] + suspended[:1] + ids[-1:])]
    out: dict[str, Any] = {}
    for role, viewer in viewers:
        claims = member_claims(viewer) if viewer else {"role": role}
        await switch_role(conn, role, claims)
        for sql, radius in CALLS:
            args = () if radius is None else (radius,)
            for board, layer, season in SCOPES:
                for pid in [*ids, uuid.UUID(int=1)]:
                    key = f"{role}:{viewer}:{sql[:40]}:{radius}:{board}:{layer}:{season}:{pid}"
                    out[key] = await ask(conn, sql, pid, board, layer, season, *args)
            for board, layer, season, bad_radius in BAD:
                key = f"{role}:{viewer}:{sql[:40]}:bad:{board}:{layer}:{season}:{bad_radius}"
                extra = () if radius is None else (bad_radius,)
                out[key] = await ask(conn, sql, ids[0], board, layer, season, *extra)
        await conn.execute("reset role")
    return out


SHARDS = 3
"""The comparison runs as this many tests of 5 examples each (15 boards in all), each drawing its own boards
(but under a fixed ``--hypothesis-seed``, where they draw the same), so pytest-xdist spreads them over its
workers: one test of 15 took 17-76 s on one worker."""


# No shrinking: an example asks a few thousand questions of each database, and the failing key names the
# board it was asked on.
@pytest.mark.parametrize("shard", range(SHARDS))
@settings(
    max_examples=15 // SHARDS,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(board=BOARD)
async def test_rank_and_around_answer_as_before(
    two_databases: tuple[asyncpg.Connection, asyncpg.Connection], board: dict[str, Any], shard: int
) -> None:
    """Same ranks, totals, windows and errors as the PL/pgSQL definitions, for every viewer (``shard``: which
    of the SHARDS tests this is; each draws its own boards)."""
    new_conn, ref_conn = two_databases
    got: dict[str, Any] = {}
    want: dict[str, Any] = {}
    for conn, out in ((new_conn, got), (ref_conn, want)):
        tx = conn.transaction()
        await tx.start()
        try:
            out.update(await answers(conn, await build(conn, board)))
        finally:
            await tx.rollback()
    differ = [key for key in want if got.get(key) != want[key]]
    assert not differ, (
        f"{len(differ)} answers differ, e.g. {differ[0]}: {got[differ[0]]} != {want[differ[0]]}"
    )
    assert any(isinstance(v, list) and v for v in want.values())


# Inlined, these run as part of their caller's statement and are never called (no search_path on them:
# tests/sql/test_catalog.py INLINED). A SET clause, strict, volatile or a scalar return would make them
# separate calls again, which pg_stat_xact_user_functions counts (track_functions = 'all' counts SQL too).
INLINED = ("leaderboard_rank_row", "leaderboard_around_rows")


async def test_rank_and_around_inline_their_board_functions(database_url: str) -> None:
    """leaderboard_rank and leaderboard_around on every board, as a member: their per-board SQL functions are
    inlined (never called), while the SQL function they call that is not inlined is counted."""
    member = {
        "xp": 70,
        "at": 0,
        "layer_xp": 5,
        "season_xp": 5,
        "visible": True,
        "left": set(),
        "suspended": None,
    }
    board = {"members": [member, {**member, "xp": 10}], "moderator": False, "toggles": [], "compact": False}
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            ids = await build(conn, board)
            await conn.execute("set local track_functions = 'all'")
            await switch_role(conn, "authenticated", member_claims(ids[1]))
            for scope in SCOPES[:4]:
                rank = json.loads(
                    await conn.fetchval(
                        "select public.leaderboard_rank($1, $2, $3, $4)::text", ids[1], *scope
                    )
                )
                assert (rank["rank"], rank["total"]) == (2 if scope[0] == "all_time" else 1, 2)
                around = await conn.fetch(
                    "select * from public.leaderboard_around($1, $2, $3, $4, 1)", ids[1], *scope
                )
                assert len(around) == 2
            await conn.execute("reset role")
            calls = dict(
                await conn.fetch(
                    "select funcname, calls from pg_stat_xact_user_functions where schemaname = 'public'"
                )
            )
    finally:
        await conn.close()
    assert (calls["leaderboard_rank"], calls["leaderboard_around"]) == (4, 4)
    assert calls["leaderboard_members_above"] >= 4
    assert {name: calls[name] for name in INLINED if name in calls} == {}
