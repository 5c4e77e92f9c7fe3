"""service_role_award_group (supabase/sql/34_award_group.sql): per-call receipts and errors, one transaction.

The Python side (xpbase/group_commit.py, merging concurrent callers) is tested in
tests/xpbase/test_group_commit.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytest_postgresql.executors.noop import NoopExecutor

from tests.conftest import cloned_database
from tests.helpers import award, new_profile, wait_for_backend
from tests.sql import test_award_set as award_set_test
from tests.sql.engine import T0, cached_totals, ledger_rows
from tests.sql.test_moderation import moderate
from tests.sql.test_roles import with_role
from xpbase.db import Database, switch_role
from xpbase.errors import DomainError


async def group(db: Database, calls: Any) -> list[dict[str, Any]]:
    """service_role_award_group(calls) as service_role, committed; its answer."""
    answer: list[dict[str, Any]] = await db.rpc("service_role_award_group", calls=calls)
    return answer


def award_call(profile_id: UUID | str, key: str, activity: str = "event_attendance", **more: Any) -> dict:
    return {
        "fn": "award_xp",
        "profile_id": str(profile_id),
        "activity": activity,
        "idempotency_key": key,
        "occurred_at": T0.isoformat(),
        **({"amount": 50} if activity == "event_attendance" else {}),
        **more,
    }


def discord_call(user_id: str, key: str, **more: Any) -> dict:
    return {
        "fn": "discord_award",
        "guild_id": "100",
        "user_id": user_id,
        "display_name": f"User {user_id}",
        "activity": "message",
        "idempotency_key": key,
        "occurred_at": T0.isoformat(),
        "channel_id": "200",
        "role_ids": ["300"],
        **more,
    }


async def keys_in_ledger(db: Database) -> set[str]:
    return {r["idempotency_key"] for r in await db.pool.fetch("select idempotency_key from public.xp_ledger")}


def error_of(item: dict[str, Any]) -> str:
    assert item["ok"] is False, item
    return str(item["error"]["sqlstate"])


async def test_each_call_gets_the_receipt_its_function_returns(db: Database) -> None:
    """award_xp and discord_award calls answer, in order, the receipts those functions store and replay."""
    ada, bo = await new_profile(db, "Ada"), await new_profile(db, "Bo")
    answer = await group(
        db,
        [
            award_call(ada, "a-1"),
            discord_call("7001", "d-1"),
            award_call(bo, "b-1", activity="message"),
            award_call(ada, "a-2", activity="message", reason="Helpful answer"),
        ],
    )
    assert [(a["fn"], a["ok"]) for a in answer] == [
        ("award_xp", True),
        ("discord_award", True),
        ("award_xp", True),
        ("award_xp", True),
    ]
    receipts = [a["receipt"] for a in answer]
    assert [r["idempotency_key"] for r in receipts] == ["a-1", "d-1", "b-1", "a-2"]
    assert [r["granted"] for r in receipts] == [50, 15, 15, 15]
    assert (receipts[0]["total_xp"], receipts[3]["total_xp_before"], receipts[3]["total_xp"]) == (50, 50, 65)
    assert receipts[1]["skipped"] is None and "skipped" not in receipts[0]
    # The same receipts the functions themselves give when asked again with the same keys.
    assert await award(db, ada, "event_attendance", "a-1", amount=50, occurred_at=T0) == {
        **receipts[0],
        "replayed": True,
    }
    again = await db.rpc(
        "service_role_discord_award",
        **{k: v for k, v in discord_call("7001", "d-1").items() if k != "fn"} | {"occurred_at": T0},
    )
    assert again == {**receipts[1], "replayed": True}
    assert (await cached_totals(db, ada))["xp"] == 65


async def test_a_failing_call_changes_nothing_and_the_others_commit(db: Database) -> None:
    """Every kind of refusal answers its call's error; its writes are undone, the other calls commit."""
    ada = await new_profile(db, "Ada")
    moderator, rowdy = await with_role(db, "moderator"), await new_profile(db, "Rowdy")
    await award(db, ada, "event_attendance", "used", amount=50, occurred_at=T0)
    await moderate(db, moderator, "suspend", rowdy, "Spamming", "1 day")
    calls: list[Any] = [
        award_call(ada, "ok-1"),
        award_call(ada, "bad-activity", activity="no_such_activity"),
        award_call("not-a-uuid", "bad-uuid"),
        award_call(ada, "bad-time", occurred_at="yesterday-ish"),
        award_call(ada, "bad-amount", amount=5000),
        award_call(ada, "used", amount=60),  # the key was used with amount 50
        award_call(rowdy, "suspended"),
        award_call("00000000-0000-4000-8000-000000000000", "no-profile"),
        award_call(ada, "unknown-key", colour="red"),
        {"fn": "reverse_award", "ledger_id": 1},
        ["not", "an", "object"],
        award_call(ada, "too-big", context={"note": "x" * 17000}),
        discord_call("7002", "bad-roles", role_ids="300"),
        # A first-sight member: ensure_profile makes the profile and identity, then award_xp refuses the
        # activity; the subtransaction takes the new profile back with it.
        discord_call("7003", "new-then-refused", activity="no_such_activity"),
        award_call(ada, "ok-2", activity="message"),
    ]
    answer = await group(db, calls)
    assert len(answer) == len(calls)
    assert answer[0]["ok"] and answer[-1]["ok"]
    assert [error_of(a) for a in answer[1:-1]] == [
        "XPACT",
        "XPBAD",
        "XPBAD",
        "XPAMT",
        "XPIDM",
        "XPSUS",
        "XPPRF",
        "XPBAD",
        "XPBAD",
        "XPBAD",
        "XPBIG",
        "XPBAD",
        "XPACT",
    ]
    assert answer[5]["error"]["detail"].startswith("first request: ")
    assert answer[2]["error"]["message"] and answer[1]["error"]["detail"] is None
    assert (answer[9]["fn"], answer[10]["fn"]) == ("reverse_award", None)
    assert await keys_in_ledger(db) == {"used", "ok-1", "ok-2"}
    assert (await cached_totals(db, ada))["xp"] == 50 + 50 + 15
    identities = await db.pool.fetchval(
        "select count(*) from public.identities where provider = 'discord' and subject = '7003'"
    )
    assert identities == 0


async def test_a_key_used_twice_in_one_group_credits_once(db: Database) -> None:
    """The second call with a key replays the first's receipt; with other parameters it is XPIDM."""
    ada = await new_profile(db, "Ada")
    answer = await group(db, [award_call(ada, "k"), award_call(ada, "k"), award_call(ada, "k", amount=70)])
    assert answer[1]["receipt"] == {**answer[0]["receipt"], "replayed": True}
    assert error_of(answer[2]) == "XPIDM"
    assert len(await ledger_rows(db, ada)) == 1


@pytest.mark.parametrize(
    ("calls", "sqlstate"),
    [
        ({"fn": "award_xp"}, "XPBAD"),
        ("[]x", "XPBAD"),
        (None, "XPBAD"),
        ([{"fn": "award_xp"}] * 501, "XPBIG"),
    ],
    ids=["object", "string", "null", "501-calls"],
)
async def test_calls_must_be_an_array_of_at_most_500(db: Database, calls: Any, sqlstate: str) -> None:
    """Anything but a JSON array of at most 500 calls fails the whole call."""
    with pytest.raises(DomainError) as caught:
        await group(db, calls)
    assert caught.value.error.sqlstate == sqlstate


async def test_an_empty_group_answers_an_empty_list(db: Database) -> None:
    assert await group(db, []) == []


async def test_profiles_are_locked_in_id_order_before_the_first_call(db: Database) -> None:
    """A group waiting for the lower profile id has not locked the higher one, though its first call names
    it: two groups over the same members in opposite orders cannot deadlock."""
    low, high = sorted([await new_profile(db, "Ada"), await new_profile(db, "Bo")], key=str)
    assert str(low) < str(high)
    async with db.pool.acquire() as holder:
        tx = holder.transaction()
        await tx.start()
        await holder.execute("select 1 from public.profiles where id = $1 for update", low)
        waiting = asyncio.create_task(group(db, [award_call(high, "h"), award_call(low, "l")]))
        await wait_for_backend(db, "wait_event_type = 'Lock' and query like '%service_role_award_group%'")
        async with db.pool.acquire() as probe, probe.transaction():
            # nowait: raises 55P03 if the waiting group had locked the higher profile already.
            await probe.execute("select 1 from public.profiles where id = $1 for update nowait", high)
        await tx.rollback()
    answer = await waiting
    assert [a["ok"] for a in answer] == [True, True]


async def test_a_lock_timeout_inside_a_call_fails_the_whole_group(db: Database) -> None:
    """An error that is not the call's fault (here 55P03, a lock timeout inside award_xp) is not answered
    as that call's error: the whole transaction fails and none of its calls commits."""
    ada, bo = await new_profile(db, "Ada"), await new_profile(db, "Bo")
    async with db.pool.acquire() as holder, holder.transaction():
        # award_xp serialises one key across profiles with this advisory lock.
        await holder.execute("select pg_advisory_xact_lock(hashtextextended('xp_ledger:' || 'held', 0))")
        async with db.pool.acquire() as conn:
            with pytest.raises(asyncpg.LockNotAvailableError):
                async with conn.transaction():
                    await switch_role(conn, "service_role")
                    await conn.execute("set local lock_timeout = '100ms'")
                    await conn.fetchval(
                        "select public.service_role_award_group($1::jsonb)",
                        [award_call(ada, "first"), award_call(bo, "held")],
                    )
    assert await keys_in_ledger(db) == set()


# The set path against the group as it was decided before it: call by call
# (tests/sql/reference/award_group_per_call.sql), on two databases cloned from the same template.

REFERENCE = Path(__file__).parent / "reference" / "award_group_per_call.sql"
GUILD = "100"
NO_XP_CHANNEL = "201"


@pytest.fixture
async def two_databases(
    xpbase_template: NoopExecutor,
) -> AsyncIterator[tuple[asyncpg.Connection, asyncpg.Connection]]:
    """(set path, call by call): superuser connections to two databases from the same template."""
    with (
        cloned_database(xpbase_template, "xpbase_group_set") as set_url,
        cloned_database(xpbase_template, "xpbase_group_one") as one_url,
    ):
        set_conn = await asyncpg.connect(set_url)
        one_conn = await asyncpg.connect(one_url)
        try:
            await one_conn.execute(REFERENCE.read_text())
            for conn in (set_conn, one_conn):
                await conn.execute(award_set_test.SETUP)
                await conn.execute("insert into public.discord_guilds (guild_id) values ($1)", GUILD)
                await conn.execute(
                    "insert into public.discord_no_xp_targets (guild_id, kind, target_id)"
                    " values ($1, 'channel', $2)",
                    GUILD,
                    NO_XP_CHANNEL,
                )
                # The seasons the awards fall in, made up front: a set attempt that is rolled back (a refused
                # call) has drawn season ids all the same, so seasons made by awards get other ids here.
                await conn.execute(
                    "select private.season_for(l.slug, m.at) from public.layers l,"
                    " (values (now() - interval '10 minutes'), (now())) as m (at) order by m.at, l.slug"
                )
            yield set_conn, one_conn
        finally:
            await set_conn.close()
            await one_conn.close()


async def send_group(conn: asyncpg.Connection, calls: list[dict[str, Any]]) -> Any:
    """The calls through service_role_award_group as service_role, committed: the answer, its ledger ids
    replaced by idempotency keys (the set path draws ids in another order), or (sqlstate, message)."""
    try:
        async with conn.transaction():
            await conn.execute("set local role service_role")
            answer = await conn.fetchval(
                "select public.service_role_award_group($1::jsonb)", json.dumps(calls)
            )
            path = await conn.fetchval("select current_setting('xpbase.award_group_path', true)")
    except asyncpg.PostgresError as exc:
        return (exc.sqlstate, str(exc))
    if path is not None:  # the reference (call by call) does not say
        answers = json.loads(answer)
        assert path == expected_path(answers), (path, answers)
    keys = {
        r["id"]: r["idempotency_key"]
        for r in await conn.fetch("select id, idempotency_key from public.xp_ledger")
    }
    return award_set_test._normalise(json.loads(answer), keys)


def expected_path(answers: list[dict[str, Any]]) -> str:
    """How service_role_award_group must decide a group whose calls answered these (34_award_group.sql):
    set attempts over the calls left, each refused at its first refused call; the calls before it as a
    batch; the refused call alone; call by call a batch of fewer than 6 calls and the rest after two refused
    attempts. "set": one batch (so a bug in the set path cannot hide behind calls decided alone), "calls":
    every call alone, "split": both."""
    n, ok = len(answers), [a["ok"] for a in answers]
    at, end, refusals, batches, alone = 0, n, 0, 0, 0
    while at < n:
        if at == end:
            alone, at, end = alone + 1, at + 1, n
        elif end - at < 6 or (end == n and refusals >= 2):
            alone, at = alone + end - at, end
        elif all(ok[at:end]):
            batches, at = batches + 1, end
        else:
            refusals, end = refusals + 1, ok.index(False, at)
    return "set" if not alone else "calls" if not batches else "split"


def discord_user(member: UUID) -> str:
    """The Discord user id of a member in these tests (digits, unique per member)."""
    return str(member.int % 10**15)


async def discord_members(conn: asyncpg.Connection, members: list[UUID]) -> None:
    """Discord identities for the members, so discord_award calls find the same profiles in both databases."""
    for pid in members:
        await conn.execute(
            "insert into public.identities (profile_id, provider, subject) values ($1, 'discord', $2)",
            pid,
            discord_user(pid),
        )


# How an item is spoiled (0: not): each makes award_xp (or discord_award) refuse that call alone.
SPOIL: dict[int, dict[str, Any]] = {
    1: {"activity": "nope"},
    2: {"amount": 16, "activity": "message"},
    3: {"profile_id": str(UUID(int=7))},
    4: {"profile_id": "not-a-uuid"},
    5: {"surprise": 1},
    6: {"occurred_at": "2026-02-30T00:00:00Z"},
    7: {"fn": "nope"},
}


def group_calls(
    items: list[tuple[Any, ...]],
    in_order: bool,
    spoil: dict[int, int],
    discord: list[bool],
    members: list[UUID],
) -> list[dict[str, Any]]:
    """award_set's random items (tests/sql/test_award_set.py), in time order or not, as group calls: some as
    the bot's discord_award (a message in a channel that earns XP or in the no-XP one), the nth spoiled as
    SPOIL[spoil[n]]."""
    made, _ = award_set_test.batches(items, len(items), (in_order, in_order), members)
    calls: list[dict[str, Any]] = []
    for n, item in enumerate(made):
        how = spoil.get(n, 0)
        if discord[n % len(discord)] and item["activity"] in ("message", "command", "voice_minute"):
            call = {
                "fn": "discord_award",
                "guild_id": GUILD,
                "user_id": discord_user(UUID(item["profile_id"])),
                "display_name": "member",
                "activity": item["activity"],
                "idempotency_key": item["idempotency_key"],
                "occurred_at": item["occurred_at"],
                "channel_id": NO_XP_CHANNEL if how == 4 else "200",
                "role_ids": [str(300 + int(r[1:])) for r in item["context"]["role_ids"]],
            }
            if how in (1, 7):
                call |= SPOIL[how]
        else:
            call = {"fn": "award_xp", **item} | SPOIL.get(how, {})
        calls.append(call)
    return calls


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    items=st.lists(award_set_test.ITEM, min_size=1, max_size=30),
    in_order=st.booleans(),
    spoil=st.dictionaries(st.integers(0, 29), st.sampled_from(list(SPOIL)), max_size=6),
    discord=st.lists(st.booleans(), min_size=1, max_size=4),
    groups=st.integers(1, 3),
    cap=st.sampled_from([15, 30, 45, 90, 400]),
    factors=st.lists(award_set_test.FACTORS, min_size=4, max_size=4),
)
async def test_the_set_path_answers_as_call_by_call(
    two_databases: tuple[asyncpg.Connection, asyncpg.Connection],
    items: list[tuple[Any, ...]],
    in_order: bool,
    spoil: dict[int, int],
    discord: list[bool],
    groups: int,
    cap: int,
    factors: list[str],
) -> None:
    """Random groups of award_xp and discord_award calls, some of them refused: the same answers (receipts
    and errors), ledger rows, receipts and derived state as the group decided call by call."""
    set_conn, one_conn = two_databases
    members = [uuid4() for _ in range(3)]
    for conn in (set_conn, one_conn):
        await award_set_test.prepare(conn, members, cap, factors)
        await discord_members(conn, members)
    calls = group_calls(items, in_order, spoil, discord, members)
    size = -(-len(calls) // groups)
    for part in range(0, len(calls), size):
        batch = calls[part : part + size]
        assert await send_group(set_conn, batch) == await send_group(one_conn, batch)
    await award_set_test.assert_same(set_conn, one_conn, members)


async def test_a_group_without_a_refused_call_is_decided_as_one_set(
    two_databases: tuple[asyncpg.Connection, asyncpg.Connection],
) -> None:
    """No call goes through private.award_xp when none is refused; one refused call is decided alone and the
    calls before and after it as batches (they still commit), and the answers are those of the reference
    either way."""
    set_conn, one_conn = two_databases
    members = [uuid4() for _ in range(2)]
    for conn in (set_conn, one_conn):
        await award_set_test.prepare(conn, members, 400, ["1.500", "2.000", "1.250", "1.000"])
        await discord_members(conn, members)
    at = datetime.now(UTC) - timedelta(minutes=5)
    newcomer_id = discord_user(uuid4())
    good = [
        {
            "fn": "award_xp",
            "profile_id": str(members[0]),
            "activity": "event_attendance",
            "idempotency_key": "s0",
            "amount": 40,
            "occurred_at": at.isoformat(),
        },
        {
            "fn": "discord_award",
            "guild_id": GUILD,
            "user_id": discord_user(members[1]),
            "display_name": "member",
            "activity": "message",
            "idempotency_key": "s1",
            "occurred_at": (at + timedelta(seconds=1)).isoformat(),
            "channel_id": "200",
            "role_ids": ["301"],
        },
        {
            "fn": "discord_award",
            "guild_id": GUILD,
            "user_id": discord_user(members[0]),
            "display_name": "member",
            "activity": "message",
            "idempotency_key": "s2",
            "occurred_at": (at + timedelta(seconds=2)).isoformat(),
            "channel_id": NO_XP_CHANNEL,
            "role_ids": [],
        },
        {
            "fn": "discord_award",
            "guild_id": GUILD,
            "user_id": newcomer_id,
            "display_name": "Newcomer",
            "activity": "message",
            "idempotency_key": "s3",
            "occurred_at": (at + timedelta(seconds=3)).isoformat(),
        },
    ]
    # Six calls at least: a batch of fewer goes call by call.
    good += [
        {
            "fn": "award_xp",
            "profile_id": str(members[n % 2]),
            "activity": "event_attendance",
            "idempotency_key": f"s{n}",
            "amount": 10 * n,
            "occurred_at": (at + timedelta(seconds=n)).isoformat(),
        }
        for n in (4, 5)
    ]

    async def decided(
        conn: asyncpg.Connection, calls: list[dict[str, Any]]
    ) -> tuple[Any, dict[str, int], str]:
        """The answer, the calls of the private functions that decide awards, and the path taken."""
        count_calls = (
            "select funcname, calls from pg_stat_xact_user_functions where schemaname = 'private'"
            " and funcname in ('award_xp', 'award_set', 'award_group_set', 'award_group_call')"
        )
        async with conn.transaction():
            await conn.execute("set local track_functions = 'all'")
            # The view may still hold earlier transactions' calls (not yet flushed): count the difference.
            before = {r["funcname"]: r["calls"] for r in await conn.fetch(count_calls)}
            await conn.execute("set local role service_role")
            answer = await conn.fetchval(
                "select public.service_role_award_group($1::jsonb)", json.dumps(calls)
            )
            counts = {
                r["funcname"]: r["calls"] - before.get(r["funcname"], 0)
                for r in await conn.fetch(count_calls)
            }
            path = await conn.fetchval("select current_setting('xpbase.award_group_path')")
        return json.loads(answer), counts, path

    answer, counts, path = await decided(set_conn, good)
    assert (path, counts.get("award_xp", 0), counts["award_set"]) == ("set", 0, 1)
    assert [a["receipt"]["granted"] for a in answer][:4] == [40, 15, 0, 15]
    assert [a["receipt"].get("skipped") for a in answer] == [None, None, "no_xp_channel", None, None, None]
    newcomer = answer[3]["receipt"]["profile_id"]
    assert (
        await set_conn.fetchval(
            "select count(*) from public.identities where provider = 'discord' and subject = $2"
            " and profile_id = $1::uuid",
            newcomer,
            newcomer_id,
        )
        == 1
    )
    reference = await send_group(one_conn, good)
    keys = {
        r["id"]: r["idempotency_key"]
        for r in await set_conn.fetch("select id, idempotency_key from public.xp_ledger")
    }
    got = award_set_test._normalise(answer, keys)
    for item in (got, reference):  # the newcomer's profile is made anew in each database
        item[3]["receipt"].pop("profile_id")
    assert got == reference

    later = at + timedelta(minutes=1)

    def voice(n: int, activity: str = "voice_minute") -> dict[str, Any]:
        return {
            "fn": "award_xp",
            "profile_id": str(members[n % 2]),
            "activity": activity,
            "idempotency_key": f"m{n}",
            "occurred_at": (later + timedelta(seconds=n)).isoformat(),
        }

    mixed = [voice(n) for n in range(6)] + [voice(6, "nope")] + [voice(n) for n in range(7, 13)]
    answer, counts, path = await decided(set_conn, mixed)
    # The refused call alone; the six before it and the six after it each as a batch. The refused attempt
    # failed fast (its award_set raised, so it is not counted), deciding nothing: no call went through
    # award_xp but the refused one, which raised too.
    assert path == "split"
    assert (counts["award_group_set"], counts["award_set"], counts["award_group_call"]) == (3, 2, 1), counts
    assert counts.get("award_xp", 0) == 0, counts
    assert [a["ok"] for a in answer] == [True] * 6 + [False] + [True] * 6
    assert answer[6]["error"]["sqlstate"] == "XPACT"
    expected = await send_group(one_conn, mixed)
    # Fewer than 6 calls before the refused one: they go call by call, the six after it as a batch.
    small = [voice(n) for n in range(13, 15)] + [voice(15, "nope")] + [voice(n) for n in range(16, 22)]
    small_answer, counts, path = await decided(set_conn, small)
    assert path == "split"
    assert (counts["award_group_set"], counts["award_set"], counts["award_group_call"]) == (2, 1, 3), counts
    assert counts["award_xp"] == 2, counts  # the two before the refused one (which raised: not counted)
    keys = {
        r["id"]: r["idempotency_key"]
        for r in await set_conn.fetch("select id, idempotency_key from public.xp_ledger")
    }
    assert award_set_test._normalise(answer, keys) == expected
    assert award_set_test._normalise(small_answer, keys) == await send_group(one_conn, small)
    await award_set_test.assert_same(set_conn, one_conn, members)


async def test_after_two_refused_attempts_the_rest_goes_call_by_call(
    two_databases: tuple[asyncpg.Connection, asyncpg.Connection],
) -> None:
    """Six good calls, a refused one, six good ones, four refused ones, six good ones: the first twelve good
    ones as two batches and the first two refused ones alone after a refused attempt each, then (two refused
    attempts) the rest call by call; the answers, ledger and derived state are the reference's."""
    set_conn, one_conn = two_databases
    members = [uuid4() for _ in range(2)]
    for conn in (set_conn, one_conn):
        await award_set_test.prepare(conn, members, 400, ["1.500", "2.000", "1.250", "1.000"])
    at = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()

    def call(n: int, member: UUID, activity: str) -> dict[str, Any]:
        return {
            "fn": "award_xp",
            "profile_id": str(member),
            "activity": activity,
            "idempotency_key": f"c{n}",
            "occurred_at": at,
        }

    refused = {6, 13, 14, 15, 16}
    calls = [call(n, members[n % 2], "nope" if n in refused else "voice_minute") for n in range(23)]
    async with set_conn.transaction():
        # No earlier call of these functions on this connection: the counts are this group's.
        await set_conn.execute("set local track_functions = 'all'")
        await set_conn.execute("set local role service_role")
        answer = json.loads(
            await set_conn.fetchval("select public.service_role_award_group($1::jsonb)", json.dumps(calls))
        )
        path = await set_conn.fetchval("select current_setting('xpbase.award_group_path')")
        counts = {
            r["funcname"]: r["calls"]
            for r in await set_conn.fetch(
                "select funcname, calls from pg_stat_xact_user_functions"
                " where funcname in ('award_group_set', 'award_group_call')"
            )
        }
    assert path == "split"
    # Set attempts: 0-22 (refused at 6), 0-5 (a batch), 7-22 (refused at 13: the second refusal), 7-12 (a
    # batch, known to pass); alone: calls 6 and 13, then 14-22 call by call.
    assert (counts["award_group_set"], counts["award_group_call"]) == (4, 11), counts
    assert [n for n, a in enumerate(answer) if not a["ok"]] == sorted(refused)
    assert {answer[n]["error"]["sqlstate"] for n in refused} == {"XPACT"}
    keys = {
        r["id"]: r["idempotency_key"]
        for r in await set_conn.fetch("select id, idempotency_key from public.xp_ledger")
    }
    assert award_set_test._normalise(answer, keys) == await send_group(one_conn, calls)
    await award_set_test.assert_same(set_conn, one_conn, members)
