"""private.award_set_write (supabase/sql/39_award_set_write.sql) and the leaderboard counts of a batch.

The receipts and derived state of the writer are held to award-at-a-time by tests/sql/test_award_set.py.
Here: the leaderboard count changes a batch appends once per member and board (private.award_set with the
count triggers off, then private.leaderboard_counts_since) equal the per-row triggers' moves, for members who
are hidden from every board, who left one board, who enter a board with their first award, and who already
stand on it; and the triggers count again once the batch is written.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from tests.sql import test_award_set as award_set_test
from tests.sql.test_award_set import two_databases  # noqa: F401 (the fixture)

COUNTS = award_set_test.STATE["leaderboard_counts"]


async def counts(conn: asyncpg.Connection) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in await conn.fetch(COUNTS)]


async def deltas(conn: asyncpg.Connection) -> Counter[tuple[Any, ...]]:
    """The rows of leaderboard_count_deltas (board, scope, level, bucket, delta), counted."""
    return Counter(tuple(r) for r in await conn.fetch("select * from public.leaderboard_count_deltas"))


async def test_a_batch_moves_each_member_once_per_board_as_the_triggers_would(
    two_databases: tuple[asyncpg.Connection, asyncpg.Connection],  # noqa: F811
) -> None:
    set_conn, one_conn = two_databases
    members = [uuid.uuid4() for _ in range(5)]
    start = datetime.now(UTC) - timedelta(minutes=20)
    for conn in (set_conn, one_conn):
        await award_set_test.prepare(conn, members, 400, ["1.000"] * 4)
        # 0: on every board; 1: hidden from all; 2: left the cyber layer board and the cyber seasons;
        # 3: left the all-time board; 4: stands on the boards already (an award before the batch).
        await conn.execute("update public.profiles set leaderboard_visible = false where id = $1", members[1])
        await conn.execute(
            "insert into public.leaderboard_hidden_boards (profile_id, board, scope)"
            " values ($1, 'layer', 'cyber'), ($1, 'season', 'cyber'), ($2, 'all_time', '')",
            members[2],
            members[3],
        )
        async with conn.transaction():
            await conn.execute("set local role service_role")
            await conn.fetch(
                "select * from public.service_role_award_xp_batch($1::jsonb)",
                json.dumps(
                    [
                        {
                            "profile_id": str(members[4]),
                            "activity": "event_attendance",
                            "amount": 300,
                            "idempotency_key": "before",
                            "occurred_at": start.isoformat(),
                        }
                    ]
                ),
            )
    batch = [
        {
            "profile_id": str(members[m]),
            "activity": activity,
            "idempotency_key": f"k{m}:{n}",
            "occurred_at": (start + timedelta(minutes=1 + n)).isoformat(),
            **({"amount": 70 * (n + 1)} if activity == "event_attendance" else {}),
        }
        for m in range(5)
        for n, activity in enumerate(["message", "event_attendance", "voice_minute", "event_attendance"])
    ]
    before = [await deltas(conn) for conn in (set_conn, one_conn)]
    assert await award_set_test.send(set_conn, batch) == await award_set_test.send(one_conn, batch)
    assert await counts(set_conn) == await counts(one_conn)
    await award_set_test.assert_same(set_conn, one_conn, members)
    # Appended once per member and board, summed per bucket: one row per bucket, and fewer rows than the
    # per-row triggers appended for the same batch.
    batched, per_row = [
        (await deltas(conn)) - was for conn, was in zip((set_conn, one_conn), before, strict=True)
    ]
    assert batched and all(n == 1 for n in batched.values())
    assert all(key[4] != 0 for key in batched)
    assert batched.total() < per_row.total()
    # The triggers are back on after the batch: a profile's XP set by hand moves the counts at once.
    await set_conn.execute("update public.profiles set xp = xp + 1000 where id = $1", members[0])
    await one_conn.execute("update public.profiles set xp = xp + 1000 where id = $1", members[0])
    assert await counts(set_conn) == await counts(one_conn)
    assert await set_conn.fetchval("select current_setting('xpbase.leaderboard_counts_batched', true)") in (
        None,
        "",
        "off",
    )
