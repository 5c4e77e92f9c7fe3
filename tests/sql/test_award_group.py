"""service_role_award_group (supabase/sql/34_award_group.sql): per-call receipts and errors, one transaction.

The Python side (xpbase/group_commit.py, merging concurrent callers) is tested in
tests/xpbase/test_group_commit.py.
"""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from tests.helpers import award, new_profile, wait_for_backend
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
