"""private.award_set (supabase/sql/39_award_set.sql, issue 16 item 1) against award-at-a-time.

Two databases cloned from the same template: in one, public.service_role_award_xp_batch goes through
private.award_set (the set path, falling back to private.award_xp per item for what it does not take); in
the other, through private.award_xp item by item as before (tests/sql/reference/award_xp_batch_per_item.sql).
Hypothesis sends the same random batches to both (several members; messages, commands and voice minutes under
a random daily cap, cooldowns, a ranged activity with named amounts, a large ranged one that climbs levels and
tiers, penalties with a floor; role and event multipliers; moments within a few minutes, in or out of time
order; replayed and reused keys; two batches, so the second meets the first's ledger) and requires the same
answers or the same error, and the same ledger rows (amount, season_amount, points, request, receipt),
profiles, layer totals, season scores, cap usage, points_ledger rows, notifications, badges, activity feed and
leaderboard count changes. Ledger ids are normalised to idempotency keys: the set path draws its ids before
the items it leaves to award_xp, so the ids of one award differ between the two databases.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytest_postgresql.executors.noop import NoopExecutor

from tests.conftest import cloned_database

REFERENCE = Path(__file__).parent / "reference" / "award_xp_batch_per_item.sql"

SETUP = """
insert into public.activity_types (slug, name, layer_slug, base_xp, min_xp, max_xp, cap_group, xp_floor)
values ('tp_adjust', 'Test penalty or bonus', 'cyber', 5, -60, 60, 'discord', 10);
insert into public.badges (slug, name, kind, threshold, activities, tier_slug, position)
values ('tp_three_messages', 'Three messages', 'activity_count', 3, '{message}', null, 90),
       ('tp_first', 'First award', 'first_time', 1, null, null, 91),
       ('tp_xp_1000', 'A thousand', 'total_xp', 1000, null, null, 92),
       ('tp_level_5', 'Level five', 'level', 5, null, null, 93),
       ('tp_member', 'Member tier', 'tier', 1, null, 'member', 94);
"""

# What each database holds for a set of members, ledger ids replaced by the idempotency key of their row.
KEYS = "select l.id, l.idempotency_key from public.xp_ledger l where l.profile_id = any ($1::uuid[])"
STATE = {
    "ledger": """
        select l.profile_id, l.idempotency_key, l.activity_slug, l.layer_slug, l.season_id, l.amount,
               l.season_amount, l.points, l.occurred_at, l.actor_id, l.actor_role, l.reason, l.reverses_id,
               l.corrects_id, l.subject, l.request, l.receipt
          from public.xp_ledger l where l.profile_id = any ($1::uuid[]) order by l.idempotency_key""",
    "profiles": """
        select p.id, p.xp, p.level, p.tier, p.points, p.xp_reached_at
          from public.profiles p where p.id = any ($1::uuid[]) order by p.id""",
    "profile_layers": """
        select * from public.profile_layers where profile_id = any ($1::uuid[])
         order by profile_id, layer_slug""",
    "season_scores": """
        select * from public.season_scores where profile_id = any ($1::uuid[])
         order by profile_id, season_id""",
    "daily_cap_usage": """
        select * from private.daily_cap_usage where profile_id = any ($1::uuid[])
         order by profile_id, cap_group, day""",
    "points_ledger": """
        select profile_id, kind, amount, balance_after, idempotency_key, actor_id, actor_role, reason,
               xp_ledger_id, request, ref
          from public.points_ledger where profile_id = any ($1::uuid[]) order by idempotency_key""",
    "notifications": """
        select profile_id, kind, title, body, data from public.notifications
         where profile_id = any ($1::uuid[])""",
    "badges": """
        select badge_slug, profile_id, subject, level, awarded_at, ledger_id, season_id, source
          from public.badge_awards where profile_id = any ($1::uuid[]) order by badge_slug, profile_id""",
    "activity_feed": """
        select ledger_id, profile_id, activity_slug, layer_slug, amount, occurred_at
          from public.activity_feed where profile_id = any ($1::uuid[])""",
    "seasons": "select id, layer_slug, starts_at, ends_at from public.seasons order by id",
    # The count changes as readers count them: an entry row (level -1, bucket = the XP) at every level.
    "leaderboard_counts": """
        select d.board, d.scope, l.level,
               case when d.level = -1 then d.bucket >> (6 * l.level) else d.bucket end, sum(d.delta)
          from public.leaderboard_count_deltas d
          join generate_series(0, 7) as l (level) on d.level in (-1, l.level)
         group by 1, 2, 3, 4 having sum(d.delta) <> 0 order by 1, 2, 3, 4""",
}


@pytest.fixture
async def two_databases(
    xpbase_template: NoopExecutor,
) -> AsyncIterator[tuple[asyncpg.Connection, asyncpg.Connection]]:
    """(set path, award at a time): superuser connections to two databases from the same template."""
    with (
        cloned_database(xpbase_template, "xpbase_set") as set_url,
        cloned_database(xpbase_template, "xpbase_one") as one_url,
    ):
        set_conn = await asyncpg.connect(set_url)
        one_conn = await asyncpg.connect(one_url)
        try:
            await one_conn.execute(REFERENCE.read_text())
            for conn in (set_conn, one_conn):
                await conn.execute(SETUP)
            yield set_conn, one_conn
        finally:
            await set_conn.close()
            await one_conn.close()


async def send(conn: asyncpg.Connection, batch: list[dict[str, Any]]) -> Any:
    """The batch through service_role_award_xp_batch as service_role: its rows, or (sqlstate, message)."""
    try:
        async with conn.transaction():
            await conn.execute("set local role service_role")
            rows = await conn.fetch(
                "select * from public.service_role_award_xp_batch($1::jsonb)", json.dumps(batch)
            )
        return [tuple(r) for r in rows]
    except asyncpg.PostgresError as exc:
        return (exc.sqlstate, str(exc))


ID_FIELDS = ("ledger_id", "xp_ledger_id", "corrects_id", "reverses_id", "cause_ledger_id")
REDECIDE = re.compile(r"redecide:(\d+):(\d+)")


def _normalise(value: Any, keys: dict[int, str]) -> Any:
    """Ledger ids (ledger_id, xp_ledger_id, corrects_id, reverses_id, cause_ledger_id, in JSON too, and the
    ids in a correction row's key redecide:<id>:<id>) replaced by their row's idempotency key; badge_award_id
    dropped (badge rows are compared on their own, by badge and member)."""
    if isinstance(value, dict):
        return {
            k: (keys.get(v, v) if k in ID_FIELDS else _normalise(v, keys))
            for k, v in value.items()
            if k != "badge_award_id"
        }
    if isinstance(value, list):
        return [_normalise(v, keys) for v in value]
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return _normalise(json.loads(value), keys)
        except json.JSONDecodeError:
            return value
    if isinstance(value, str):
        return REDECIDE.sub(lambda m: f"redecide:{keys.get(int(m[1]))}:{keys.get(int(m[2]))}", value)
    return value


async def state(conn: asyncpg.Connection, members: list[uuid.UUID]) -> dict[str, Any]:
    raw = {r["id"]: r["idempotency_key"] for r in await conn.fetch(KEYS, members)}
    keys = {
        i: REDECIDE.sub(lambda m: f"redecide:{raw.get(int(m[1]))}:{raw.get(int(m[2]))}", k)
        for i, k in raw.items()
    }
    out: dict[str, Any] = {}
    for name, sql in STATE.items():
        args = [members] if "$1" in sql else []
        rows = [_normalise(dict(r), keys) for r in await conn.fetch(sql, *args)]
        out[name] = sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))
    return out


async def assert_same(
    set_conn: asyncpg.Connection, one_conn: asyncpg.Connection, members: list[uuid.UUID]
) -> None:
    got, want = await state(set_conn, members), await state(one_conn, members)
    for name in STATE:
        if got[name] != want[name]:
            dump = [json.dumps(r, sort_keys=True, default=str) for r in got[name]]
            wanted = [json.dumps(r, sort_keys=True, default=str) for r in want[name]]
            only_set = [r for r in dump if r not in wanted]
            only_one = [r for r in wanted if r not in dump]
            pytest.fail(f"{name}: set path only:\n{only_set[:3]}\naward_xp only:\n{only_one[:3]}")


ACTIVITIES = ["message", "command", "voice_minute", "event_attendance", "xp_purchase", "tp_adjust"]
AMOUNTS: dict[str, list[int | None]] = {
    "message": [None, None, None, 15],
    "command": [None, None, None, 5],
    "voice_minute": [None, None, None, 10],
    "event_attendance": [None, 10, 250, 500],
    "xp_purchase": [None, 1, 5000, 40000],
    "tp_adjust": [None, -60, -7, 60],
}
ITEM = st.tuples(
    st.integers(0, 2),  # member
    st.sampled_from(ACTIVITIES),
    st.integers(0, 240),  # seconds after the example's start
    st.integers(0, 3),  # which amount
    st.sets(st.sampled_from(["r1", "r2", "r3"]), max_size=2),  # context.role_ids
    st.sampled_from([None, "e1", "e2"]),  # context.event_id
    st.integers(0, 11),  # 0: the item repeats an earlier one (same key and request: a replay)
)
FACTORS = st.sampled_from(["1.000", "1.250", "1.500", "2.000", "3.333"])


async def prepare(
    conn: asyncpg.Connection,
    members: list[uuid.UUID],
    cap: int,
    factors: list[str],
    horizon: int = 172800,
    stale: bool = False,
) -> None:
    await conn.execute("update public.cap_groups set daily_cap = $1 where slug = 'discord'", cap)
    # 0: no late award is decided again (each as of its arrival, late and beyond_horizon in its receipt).
    await conn.execute("update public.engine_settings set late_award_horizon_seconds = $1", horizon)
    await conn.execute("delete from public.multipliers")
    await conn.execute(
        "insert into public.multipliers (kind, match_value, activity_slug, factor) values"
        " ('role', 'r1', null, $1::numeric), ('role', 'r2', 'message', $2::numeric),"
        " ('event', 'e1', null, $3::numeric), ('event', null, 'voice_minute', $4::numeric)",
        *factors,
    )
    for pid in members:
        await conn.execute(
            "insert into public.profiles (id, display_name, tier, xp_reached_at)"
            " values ($1, 'member', public.tier_for_level(1), '2026-01-01')",
            pid,
        )
        if stale:
            # Cached level and layer status behind the XP (as after a curve change): kept until an award moves
            # the total, as private.apply_xp keeps them.
            await conn.execute("update public.profiles set xp = 600, level = 1 where id = $1", pid)
            await conn.execute(
                "insert into public.profile_layers (profile_id, layer_slug, xp, status, reached_at)"
                " values ($1, 'cyber', 600, 'offline', '2026-01-01')",
                pid,
            )


def batches(
    items: list[tuple[Any, ...]], split: int, in_order: tuple[bool, bool], members: list[uuid.UUID]
) -> list[list[dict[str, Any]]]:
    start = (datetime.now(UTC) - timedelta(minutes=10)).replace(microsecond=0)
    prefix = uuid.uuid4().hex[:8]
    made: list[tuple[int, dict[str, Any]]] = []
    for n, (member, activity, offset, which, roles, event, repeat) in enumerate(items):
        if repeat == 0 and made:
            made.append(made[len(made) // 2])
            continue
        item: dict[str, Any] = {
            "profile_id": str(members[member]),
            "activity": activity,
            "idempotency_key": f"{prefix}:{n}",
            "occurred_at": (start + timedelta(seconds=offset)).isoformat(),
            "context": {"role_ids": sorted(roles)} | ({"event_id": event} if event else {}),
        }
        if AMOUNTS[activity][which] is not None:
            item["amount"] = AMOUNTS[activity][which]
        made.append((offset, item))
    out = []
    for part, ordered in zip((made[:split], made[split:]), in_order, strict=True):
        out.append([item for _, item in (sorted(part, key=lambda p: p[0]) if ordered else part)])
    return out


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    items=st.lists(ITEM, min_size=1, max_size=40),
    split=st.integers(0, 40),
    in_order=st.tuples(st.booleans(), st.booleans()),
    cap=st.sampled_from([15, 20, 25, 30, 45, 60, 90, 150, 400]),  # small sums: awards land exactly on it
    factors=st.lists(FACTORS, min_size=4, max_size=4),
    horizon=st.sampled_from([0, 172800]),
    stale=st.booleans(),
)
async def test_a_set_decides_as_award_xp_one_at_a_time(
    two_databases: tuple[asyncpg.Connection, asyncpg.Connection],
    items: list[tuple[Any, ...]],
    split: int,
    in_order: tuple[bool, bool],
    cap: int,
    factors: list[str],
    horizon: int,
    stale: bool,
) -> None:
    """Same answers (or the same error), same ledger rows and receipts, same derived state."""
    set_conn, one_conn = two_databases
    members = [uuid.uuid4() for _ in range(3)]
    for conn in (set_conn, one_conn):
        await prepare(conn, members, cap, factors, horizon, stale)
    for batch in batches(items, split, in_order, members):
        assert await send(set_conn, batch) == await send(one_conn, batch)
    await assert_same(set_conn, one_conn, members)


async def test_the_set_path_takes_members_in_time_order_and_leaves_the_rest(
    two_databases: tuple[asyncpg.Connection, asyncpg.Connection],
) -> None:
    """A member in time order is decided as a set (no private.award_xp call), a member out of order by
    award_xp; both as award-at-a-time decides them."""
    set_conn, one_conn = two_databases
    members = [uuid.uuid4() for _ in range(2)]
    for conn in (set_conn, one_conn):
        await prepare(conn, members, 100, ["1.500", "2.000", "1.250", "1.000"])
    start = datetime.now(UTC) - timedelta(minutes=10)

    def item(member: int, key: str, seconds: int, activity: str = "message") -> dict[str, Any]:
        at = (start + timedelta(seconds=seconds)).isoformat()
        return {
            "profile_id": str(members[member]),
            "activity": activity,
            "idempotency_key": key,
            "occurred_at": at,
        }

    batch = [item(0, "a0", 0), item(0, "a1", 30), item(0, "a2", 61), item(1, "b0", 90), item(1, "b1", 0)]
    async with set_conn.transaction():
        await set_conn.execute("set local track_functions = 'all'")
        rows = await set_conn.fetch("select * from private.award_set($1::jsonb)", json.dumps(batch))
        calls = await set_conn.fetchval(
            "select calls from pg_stat_xact_user_functions"
            " where schemaname = 'private' and funcname = 'award_xp'"
        )
    assert calls == 2  # b1 is dated before b0: member 1 goes through award_xp, member 0 does not
    assert [(r["ord"], json.loads(r["receipt"])["granted"]) for r in rows] == [
        (1, 15),
        (2, 0),
        (3, 15),
        (4, 15),
        (5, 15),
    ]
    assert [json.loads(r["receipt"])["cooldown_remaining_seconds"] for r in rows][:2] == [0, 30]
    await send(one_conn, batch)
    await assert_same(set_conn, one_conn, members)


@pytest.mark.parametrize(
    ("change", "sqlstate", "index"),
    [
        ({"amount": 16}, "XPAMT", 2),
        ({"activity": "nope"}, "XPACT", 2),
        ({"profile_id": "not-a-uuid"}, "XPBAD", 2),
        ({"occurred_at": "2026-02-30T00:00:00Z"}, "XPBAD", 2),
        ({"occurred_at": "1999-12-31T00:00:00Z"}, "XPTIM", 2),
        ({"profile_id": str(uuid.UUID(int=7))}, "XPPRF", 2),
        ({"idempotency_key": "k0"}, "XPIDM", 2),
        ({"surprise": 1}, "XPBAD", 2),
        ({"context": {"role_ids": "r1"}}, "XPBAD", 2),
    ],
)
async def test_errors_are_award_xp_batch_errors(
    two_databases: tuple[asyncpg.Connection, asyncpg.Connection],
    change: dict[str, Any],
    sqlstate: str,
    index: int,
) -> None:
    """A bad item fails the batch with award_xp's SQLSTATE and message, named by its index."""
    set_conn, one_conn = two_databases
    members = [uuid.uuid4()]
    for conn in (set_conn, one_conn):
        await prepare(conn, members, 100, ["1.000"] * 4)
    at = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    batch = [
        {"profile_id": str(members[0]), "activity": "message", "idempotency_key": f"k{i}", "occurred_at": at}
        for i in range(3)
    ]
    batch[0]["activity"] = "voice_minute"
    batch[index] |= change
    got = await send(set_conn, batch)
    assert got == await send(one_conn, batch)
    assert got[0] == sqlstate and got[1].startswith(f"awards[{index}]: ")
    assert (
        await set_conn.fetchval("select count(*) from public.xp_ledger where profile_id = $1", members[0])
        == 0
    )
    # Failing fast (the group commit's set attempts): the same item named, none of the items before it
    # decided.
    award_xp_calls = (
        "select coalesce(sum(calls), 0) from pg_stat_xact_user_functions"
        " where schemaname = 'private' and funcname = 'award_xp'"
    )
    async with set_conn.transaction():
        await set_conn.execute("set local track_functions = 'all'")
        before = await set_conn.fetchval(award_xp_calls)  # may hold earlier transactions' calls
        with pytest.raises(asyncpg.PostgresError) as failed:
            async with set_conn.transaction():
                await set_conn.fetch(
                    "select * from private.award_set($1::jsonb, p_fail_fast => true)", json.dumps(batch)
                )
        assert await set_conn.fetchval(award_xp_calls) == before
    assert failed.value.sqlstate == "XPBAD" and str(failed.value).startswith(f"awards[{index}]: refused")


async def test_items_in_every_accepted_form_decide_alike(
    two_databases: tuple[asyncpg.Connection, asyncpg.Connection],
) -> None:
    """What award_xp accepts in other spellings (an amount as a string, moments without a zone or with an
    offset, an upper-case profile id, a reason with spaces, numeric role ids, null amount) is decided
    alike."""
    set_conn, one_conn = two_databases
    members = [uuid.uuid4() for _ in range(3)]
    for conn in (set_conn, one_conn):
        await prepare(conn, members, 200, ["2.000", "1.500", "1.250", "1.000"])
        await conn.execute(
            "insert into public.multipliers (kind, match_value, factor) values ('role', '7', 1.5)"
        )
    at = datetime.now(UTC) - timedelta(minutes=30)
    batch = [
        {
            "profile_id": str(members[0]),
            "activity": "event_attendance",
            "idempotency_key": "f0",
            "amount": "70",
            "occurred_at": at.strftime("%Y-%m-%d %H:%M:%S"),
        },
        {
            "profile_id": str(members[0]).upper(),
            "activity": "voice_minute",
            "idempotency_key": "f1",
            "occurred_at": (at + timedelta(minutes=1))
            .astimezone(timezone(timedelta(hours=5, minutes=30)))
            .isoformat(),
            "context": {"role_ids": [7, "r1"]},
            "reason": "  voice  ",
        },
        {
            "profile_id": str(members[1]),
            "activity": "message",
            "idempotency_key": "f2",
            "occurred_at": at.isoformat(),
            "context": {"channel_id": "c"},
        },
        {
            "profile_id": str(members[2]),
            "activity": "command",
            "idempotency_key": "f3",
            "amount": None,
            "occurred_at": at.isoformat(),
            "context": {},
        },
        {
            "profile_id": str(members[2]),
            "activity": "xp_purchase",
            "idempotency_key": "f4",
            "amount": 12000,
            "occurred_at": (at + timedelta(minutes=2)).isoformat(),
        },
    ]
    answer = await send(set_conn, batch)
    assert answer == await send(one_conn, batch)
    assert [r[1] for r in answer] == [70, 20, 15, 5, 12000]
    await assert_same(set_conn, one_conn, members)
