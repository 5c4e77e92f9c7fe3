"""xpbase.group_commit: concurrent award callers share one transaction, each with its own receipt or error.

The SQL side (service_role_award_group) is tested in tests/sql/test_award_group.py.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any, cast
from uuid import UUID

import pytest

from tests.helpers import award, new_profile, wait_for_backend
from tests.postgrest_standin import PostgrestStandIn
from tests.sql.engine import T0
from xpbase.db import Database
from xpbase.errors import DomainError
from xpbase.group_commit import GROUP_FUNCTION, AwardGroupCommit
from xpbase.models.discord import DiscordAwardReceipt
from xpbase.models.engine import AwardReceipt
from xpbase.rpc import PostgresRPC, PostgrestRPC, RPCError, RPCUnavailable
from xpbase.settings import Settings


class CountingRPC(PostgresRPC):
    """PostgresRPC that counts the calls it makes, per function (the hook the merge is measured by)."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self.calls: Counter[str] = Counter()

    async def call_json(
        self, function: str, /, *, role: Any = "service_role", claims: Any = None, **params: Any
    ) -> Any:
        self.calls[function] += 1
        return await super().call_json(function, role=role, claims=claims, **params)


async def ledger_keys(db: Database) -> list[str]:
    rows = await db.pool.fetch("select idempotency_key from public.xp_ledger order by id")
    return [r["idempotency_key"] for r in rows]


async def transactions_that_wrote(db: Database) -> int:
    """Transactions that wrote ledger rows: recorded_at defaults to now(), the transaction's start."""
    return int(await db.pool.fetchval("select count(distinct recorded_at) from public.xp_ledger"))


async def gather_outcomes(*awaitables: Any) -> list[Any]:
    return list(await asyncio.gather(*awaitables, return_exceptions=True))


async def test_concurrent_callers_are_merged_and_each_gets_its_own_receipt(db: Database) -> None:
    """40 concurrent awards over 4 members make one SQL call and one transaction; every caller gets the
    receipt of its own key, and the totals are those of 40 awards."""
    members = [await new_profile(db, f"M{i}") for i in range(4)]
    rpc = CountingRPC(db)
    group = AwardGroupCommit(rpc, window=0.002, max_batch=64)
    keys = [f"gc-{i}" for i in range(40)]
    receipts = await asyncio.gather(
        *(
            group.award(members[i % 4], "event_attendance", key, amount=10 + i, occurred_at=T0)
            for i, key in enumerate(keys)
        )
    )
    assert all(isinstance(r, AwardReceipt) for r in receipts)
    assert [r.idempotency_key for r in receipts] == keys
    assert [r.granted for r in receipts] == [10 + i for i in range(40)]
    assert [r.profile_id for r in receipts] == [members[i % 4] for i in range(40)]
    assert not any(r.replayed for r in receipts)
    assert rpc.calls == Counter({GROUP_FUNCTION: 1}) and (group.groups_sent, group.calls_sent) == (1, 40)
    assert await transactions_that_wrote(db) == 1
    assert sorted(await ledger_keys(db)) == sorted(keys)
    totals = await db.pool.fetch("select id, xp from public.profiles where id = any($1::uuid[])", members)
    assert {r["id"]: r["xp"] for r in totals} == {
        m: sum(10 + i for i in range(40) if i % 4 == n) for n, m in enumerate(members)
    }


async def test_max_batch_sends_a_group_as_soon_as_it_is_full(db: Database) -> None:
    """12 callers with max_batch 5 make groups of 5, 5 and 2: fewer SQL calls than awards, all credited."""
    member = await new_profile(db)
    rpc = CountingRPC(db)
    group = AwardGroupCommit(rpc, window=0.002, max_batch=5)
    receipts = await asyncio.gather(
        *(group.award(member, "event_attendance", f"k{i}", amount=10, occurred_at=T0) for i in range(12))
    )
    assert [r.total_xp for r in sorted(receipts, key=lambda r: r.total_xp)] == [10 * i for i in range(1, 13)]
    assert rpc.calls[GROUP_FUNCTION] == 3 and group.groups_sent == 3
    assert await transactions_that_wrote(db) == 3


async def test_a_bad_award_raises_for_its_caller_only(db: Database) -> None:
    """Unknown activity, malformed profile id, a reused key and an unknown profile raise their own
    DomainError for their own caller and leave no row; the other callers of the group are credited."""
    member = await new_profile(db)
    await award(db, member, "event_attendance", "used", amount=50, occurred_at=T0)
    rpc = CountingRPC(db)
    group = AwardGroupCommit(rpc)
    outcomes = await gather_outcomes(
        group.award(member, "event_attendance", "good-1", amount=10, occurred_at=T0),
        group.award(member, "no_such_activity", "bad-activity"),
        group.award("not-a-uuid", "event_attendance", "bad-uuid", amount=10),
        group.award(member, "event_attendance", "used", amount=60, occurred_at=T0),
        group.award(UUID(int=7), "event_attendance", "no-profile", amount=10),
        group.award(member, "event_attendance", "good-2", amount=20, occurred_at=T0),
    )
    assert isinstance(outcomes[0], AwardReceipt) and isinstance(outcomes[5], AwardReceipt)
    assert (outcomes[0].total_xp, outcomes[5].total_xp) == (60, 80)
    errors = outcomes[1:5]
    assert all(isinstance(e, DomainError) for e in errors), errors
    assert [e.error.sqlstate for e in errors] == ["XPACT", "XPBAD", "XPIDM", "XPPRF"]
    assert "no_such_activity" in errors[0].message
    assert rpc.calls[GROUP_FUNCTION] == 1
    assert sorted(await ledger_keys(db)) == ["good-1", "good-2", "used"]


async def test_idempotent_replay_through_the_group(db: Database) -> None:
    """A key used before replays its first receipt through the group, and a key sent twice in one group
    credits once: one fresh receipt and one replay of it."""
    member = await new_profile(db)
    first = await award(db, member, "event_attendance", "k", amount=50, occurred_at=T0)
    group = AwardGroupCommit(PostgresRPC(db))
    again, fresh, twice = await asyncio.gather(
        group.award(member, "event_attendance", "k", amount=50, occurred_at=T0),
        group.award(member, "message", "m", occurred_at=T0),
        group.award(member, "message", "m", occurred_at=T0),
    )
    assert again.replayed and again == AwardReceipt.model_validate({**first, "replayed": True})
    assert not fresh.replayed and twice == fresh.model_copy(update={"replayed": True})
    assert sorted(await ledger_keys(db)) == ["k", "m"]


FAIL_AT_COMMIT = """
create schema test_hooks;
create function test_hooks.at_commit() returns trigger language plpgsql as $$
begin
  if new.idempotency_key = 'poison' then
    raise exception 'refused at commit';  -- SQLSTATE P0001: not an engine error
  end if;
  if new.idempotency_key = 'slow' then
    perform pg_advisory_xact_lock(4242);  -- COMMIT waits while the test holds this lock
  end if;
  return null;
end $$;
create constraint trigger at_commit after insert on public.xp_ledger
  deferrable initially deferred for each row execute function test_hooks.at_commit();
"""


async def test_a_failed_commit_fails_every_caller_and_hands_out_no_receipt(db: Database) -> None:
    """The function answered every award, then COMMIT failed (a deferred trigger): every caller of the group
    gets the commit's error, none a receipt, and nothing is in the ledger."""
    await db.pool.execute(FAIL_AT_COMMIT)
    member = await new_profile(db)
    group = AwardGroupCommit(PostgresRPC(db))
    outcomes = await gather_outcomes(
        *(group.award(member, "event_attendance", f"ok-{i}", amount=10, occurred_at=T0) for i in range(5)),
        group.award(member, "event_attendance", "poison", amount=10, occurred_at=T0),
        group.award(member, "no_such_activity", "bad"),
    )
    assert group.groups_sent == 1
    assert all(isinstance(o, RPCError) and not isinstance(o, DomainError) for o in outcomes), outcomes
    assert {o.code for o in outcomes} == {"P0001"} and "refused at commit" in outcomes[0].message
    assert await ledger_keys(db) == []


async def test_no_receipt_is_handed_out_while_the_commit_is_running(db: Database) -> None:
    """While COMMIT is held up (a deferred trigger waits for a lock the test holds) no caller has its
    receipt; once the commit goes through, every caller has it."""
    await db.pool.execute(FAIL_AT_COMMIT)
    member = await new_profile(db)
    group = AwardGroupCommit(PostgresRPC(db))
    async with db.pool.acquire() as holder, holder.transaction():
        await holder.execute("select pg_advisory_xact_lock(4242)")
        callers = [
            asyncio.create_task(group.award(member, "event_attendance", key, amount=10, occurred_at=T0))
            for key in ("slow", "a", "b")
        ]
        await wait_for_backend(db, "wait_event = 'advisory' and query ilike 'commit%'")
        assert not any(c.done() for c in callers)
        assert await ledger_keys(db) == []  # not committed: invisible to others
    receipts = await asyncio.gather(*callers)
    assert [r.idempotency_key for r in receipts] == ["slow", "a", "b"]
    assert sorted(await ledger_keys(db)) == ["a", "b", "slow"]


async def test_a_lost_connection_fails_every_caller_of_the_group(db: Database) -> None:
    """The group's backend is terminated while it waits for a profile lock: every caller gets the same
    error, no receipt, and nothing of the group is in the ledger."""
    busy, other = await new_profile(db, "Busy"), await new_profile(db, "Other")
    group = AwardGroupCommit(PostgresRPC(db))
    async with db.pool.acquire() as holder:
        tx = holder.transaction()
        await tx.start()
        await holder.execute("select 1 from public.profiles where id = $1 for update", busy)
        callers = [
            asyncio.create_task(group.award(pid, "event_attendance", f"k-{n}", amount=10, occurred_at=T0))
            for n, pid in enumerate([other, busy, other])
        ]
        pid = await wait_for_backend(db, f"wait_event_type = 'Lock' and query like '%{GROUP_FUNCTION}%'")
        assert await db.pool.fetchval("select pg_terminate_backend($1)", pid)
        outcomes = await gather_outcomes(*callers)
        await tx.rollback()
    assert all(isinstance(o, RPCError) for o in outcomes), outcomes
    assert outcomes[0] is outcomes[1] is outcomes[2]
    assert await ledger_keys(db) == []


async def test_a_caller_cancelled_before_its_group_is_sent_is_never_sent(db: Database) -> None:
    """Cancelling a caller while its award waits for the window drops the award; the others go."""
    member = await new_profile(db)
    group = AwardGroupCommit(PostgresRPC(db), window=3600)
    kept = asyncio.create_task(group.award(member, "event_attendance", "kept", amount=10, occurred_at=T0))
    dropped = asyncio.create_task(group.award(member, "event_attendance", "dropped", amount=10))
    await asyncio.sleep(0)  # both are waiting in the open group
    dropped.cancel()
    await group.aclose()  # sends what still waits
    assert (await kept).granted == 10 and dropped.cancelled()
    assert group.calls_sent == 1 and await ledger_keys(db) == ["kept"]
    with pytest.raises(RPCUnavailable):  # closed: as a database that went away (the bot is stopping)
        await group.award(member, "event_attendance", "late", amount=10)


async def test_discord_awards_through_the_group(db: Database) -> None:
    """discord_award calls answer DiscordAward receipts, as service_role_discord_award does."""
    group = AwardGroupCommit(PostgresRPC(db))
    receipts = await asyncio.gather(
        *(
            group.discord_award(
                guild_id="1",
                user_id=str(900 + i),
                display_name=f"U{i}",
                activity="message",
                idempotency_key=f"discord:message:{i}",
                occurred_at=T0,
                channel_id="2",
                role_ids=["3"],
            )
            for i in range(5)
        )
    )
    assert all(isinstance(r, DiscordAwardReceipt) and r.granted == 15 for r in receipts)
    assert group.groups_sent == 1 and len({r.profile_id for r in receipts}) == 5


async def test_the_group_works_over_postgrest(
    postgrest: PostgrestStandIn, postgrest_rpc: PostgrestRPC
) -> None:
    """Over supabase-py the callers share one POST /rpc/service_role_award_group, with the same receipts
    and per-caller errors."""
    group = AwardGroupCommit(postgrest_rpc)
    pid = await postgrest_rpc.call("ensure_profile", provider="discord", subject="42", display_name="Pat")
    postgrest.requests.clear()
    outcomes = await gather_outcomes(
        group.award(pid, "event_attendance", "p-1", amount=10, occurred_at=T0),
        group.award(pid, "no_such_activity", "p-2"),
        group.award(pid, "event_attendance", "p-3", amount=20, occurred_at=T0),
    )
    assert [type(o) for o in outcomes] == [AwardReceipt, DomainError, AwardReceipt]
    assert outcomes[1].error.sqlstate == "XPACT" and outcomes[2].total_xp == 30
    assert [r.path for r in postgrest.requests] == [f"/rest/v1/rpc/{GROUP_FUNCTION}"]


def test_settings_give_the_window_and_batch() -> None:
    """XPBASE_AWARD_GROUP_WINDOW_MS and _MAX_BATCH reach the group; bad values are refused."""
    rpc = PostgresRPC(cast(Database, None))  # never called here
    settings = Settings(_env_file=None, award_group_window_ms=5, award_group_max_batch=32)
    group = AwardGroupCommit.from_settings(rpc, settings)
    assert (group.window, group.max_batch) == (0.005, 32)
    with pytest.raises(ValueError):
        AwardGroupCommit(rpc, max_batch=501)
    with pytest.raises(ValueError):
        AwardGroupCommit(rpc, window=-1)
