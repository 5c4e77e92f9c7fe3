"""Issue 18 findings, one test each: time bounds, sizes, statement timeouts, lock order and retries.

Each test failed on main before its fix. The deadlock tests force the interleaving that deadlocked:
a third connection holds the idempotency-key advisory lock each award takes right after its profile
lock, so each transaction stops holding its first profile; releasing it let them cross.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import pytest

from tests.helpers import award, new_profile
from xpbase.db import Database, member_claims, retry_transient, switch_role
from xpbase.errors import ENGINE_ERRORS, DomainError


async def refused(coro: object, sqlstate: str) -> DomainError:
    """Await ``coro`` and return the DomainError it raised, which must carry ``sqlstate``."""
    with pytest.raises(DomainError) as caught:
        await coro  # type: ignore[misc]
    assert caught.value.error.sqlstate == sqlstate, caught.value.message
    return caught.value


# ---------------------------------------------------------------------------
# Times and sizes (High: xp_timeline with infinity; Low: service_role RPCs)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("moment", ["infinity", "-infinity"])
async def test_timeline_and_dashboard_refuse_infinity(db: Database, moment: str) -> None:
    pid = await new_profile(db, "Ada")
    claims = member_claims(pid)
    for function in ("xp_timeline", "dashboard_stats"):
        async with db.as_member(pid) as conn:
            with pytest.raises(asyncpg.PostgresError) as caught:
                await conn.fetch(
                    f"select * from public.{function}(profile_id => $1, at => $2::text::timestamptz)",
                    pid,
                    moment,
                )
            assert caught.value.sqlstate == "XPINF"
        assert claims["sub"] == str(pid)


async def test_timeline_refuses_year_one_and_far_future(db: Database) -> None:
    pid = await new_profile(db, "Ada")
    for moment in (datetime(1, 1, 2, tzinfo=UTC), datetime.now(UTC) + timedelta(days=400)):
        await refused(
            db.rpc_rows(
                "xp_timeline", role="authenticated", claims=member_claims(pid), profile_id=pid, at=moment
            ),
            "XPTIM",
        )


async def test_award_refuses_year_one_without_creating_a_season(db: Database) -> None:
    pid = await new_profile(db, "Ada")
    error = await refused(
        award(db, pid, "xp_purchase", "old", amount=10, occurred_at=datetime(1, 1, 2, tzinfo=UTC)), "XPTIM"
    )
    assert "occurred_at" in error.message
    async with db.as_service() as conn:
        assert await conn.fetchval("select count(*) from public.seasons where name like '0001-%'") == 0
        assert await conn.fetchval("select count(*) from public.xp_ledger where profile_id = $1", pid) == 0


@pytest.mark.parametrize("moment", ["infinity", "-infinity"])
async def test_award_reports_infinity_clearly(db: Database, moment: str) -> None:
    pid = await new_profile(db, "Ada")
    async with db.pool.acquire() as conn, conn.transaction():
        await switch_role(conn, "service_role")
        with pytest.raises(asyncpg.PostgresError) as caught:
            await conn.fetchval(
                "select public.award_xp(profile_id => $1, activity => 'xp_purchase',"
                " idempotency_key => 'inf', amount => 10, occurred_at => $2::text::timestamptz)",
                pid,
                moment,
            )
    assert caught.value.sqlstate == "XPINF"
    assert "infinity" in str(caught.value) and "convert" not in str(caught.value)


async def test_award_context_is_at_most_4096_bytes(db: Database) -> None:
    pid = await new_profile(db, "Ada")
    await award(db, pid, "xp_purchase", "fits", amount=10, context={"note": "x" * 4000})
    await refused(award(db, pid, "xp_purchase", "too-big", amount=10, context={"note": "x" * 4100}), "XPBIG")
    big_batch = [
        {
            "profile_id": str(pid),
            "activity": "xp_purchase",
            "idempotency_key": "b",
            "amount": 1,
            "context": {"n": "x" * 5000},
        }
    ]
    await refused(db.rpc_rows("service_role_award_xp_batch", awards=big_batch), "XPBIG")


async def test_finalize_refuses_infinity_and_the_future(db: Database) -> None:
    pid = await new_profile(db, "Ada")
    await award(db, pid, "xp_purchase", "now", amount=10)
    async with db.pool.acquire() as conn, conn.transaction():
        await switch_role(conn, "service_role")
        with pytest.raises(asyncpg.PostgresError) as caught:
            await conn.fetchval("select public.finalize_seasons('infinity'::timestamptz)")
    assert caught.value.sqlstate == "XPINF"
    await refused(db.rpc("finalize_seasons", at=datetime.now(UTC) + timedelta(days=40)), "XPTIM")
    async with db.as_service() as conn:
        assert await conn.fetchval("select count(*) from public.seasons where finalized_at is not null") == 0


def test_new_sqlstates_are_in_the_error_table() -> None:
    for sqlstate, status in (("XPTIM", 400), ("XPINF", 400), ("XPBIG", 413)):
        assert ENGINE_ERRORS[sqlstate].status == status


async def test_api_roles_get_supabase_statement_timeouts(db: Database) -> None:
    pid = await new_profile(db, "Ada")
    async with db.as_anon() as conn:
        assert await conn.fetchval("show statement_timeout") == "3s"
    async with db.as_member(pid) as conn:
        assert await conn.fetchval("show statement_timeout") == "8s"
        with pytest.raises(asyncpg.QueryCanceledError):
            await conn.execute("select pg_sleep(9)")


# ---------------------------------------------------------------------------
# Lock order (Medium: deadlocks) and retries
# ---------------------------------------------------------------------------


WAIT_POLLS = 1500
"""How many times waiting_backends looks before it fails: 1,500 polls 0.02 s apart, about 30 s."""


async def waiting_backends(admin: asyncpg.Connection, n: int) -> None:
    """Wait until ``n`` other backends wait for a lock; fail after ``WAIT_POLLS`` polls with what
    pg_stat_activity showed, so a wrong premise (a statement that never blocks) fails instead of hanging."""
    waiting = (
        "select count(*) from pg_stat_activity"
        " where wait_event_type = 'Lock' and datname = current_database()"
    )
    for _ in range(WAIT_POLLS):
        if await admin.fetchval(waiting) >= n:
            return
        await asyncio.sleep(0.02)
    rows = await admin.fetch(
        "select pid, state, wait_event_type, wait_event, left(query, 120) as query from pg_stat_activity"
        " where backend_type = 'client backend' and pid <> pg_backend_pid() and datname = current_database()"
    )
    shown = "\n".join(str(dict(row)) for row in rows) or "(no other client backends)"
    pytest.fail(
        f"{n} backend(s) waiting on a lock never showed in {WAIT_POLLS} polls; pg_stat_activity:\n{shown}"
    )


async def key_lock(conn: asyncpg.Connection, key: str) -> None:
    """Hold the award path's advisory lock of an idempotency key (held until conn's transaction ends)."""
    await conn.execute("select pg_advisory_xact_lock(hashtextextended('xp_ledger:' || $1, 0))", key)


async def batch(conn: asyncpg.Connection, awards: list[dict[str, object]]) -> list[asyncpg.Record]:
    """service_role_award_xp_batch in its own transaction, without the RPC layer's retry."""
    async with conn.transaction():
        await switch_role(conn, "service_role")
        return await conn.fetch("select * from public.service_role_award_xp_batch($1)", json.dumps(awards))


async def test_opposite_order_batches_do_not_deadlock(db: Database, database_url: str) -> None:
    low, high = sorted([await new_profile(db, "A"), await new_profile(db, "B")])

    def item(pid: UUID, key: str) -> dict[str, object]:
        return {"profile_id": str(pid), "activity": "xp_purchase", "idempotency_key": key, "amount": 5}

    admin, one, two = [await asyncpg.connect(database_url) for _ in range(3)]
    try:
        async with admin.transaction():
            await key_lock(admin, "first-low")
            await key_lock(admin, "second-high")
            first = asyncio.ensure_future(batch(one, [item(low, "first-low"), item(high, "first-high")]))
            await waiting_backends(admin, 1)
            second = asyncio.ensure_future(batch(two, [item(high, "second-high"), item(low, "second-low")]))
            await waiting_backends(admin, 2)
        results = await asyncio.gather(first, second, return_exceptions=True)
    finally:
        for conn in (admin, one, two):
            await conn.close()
    assert [len(r) for r in results if isinstance(r, list)] == [2, 2], results
    async with db.as_service() as conn:
        assert (
            await conn.fetchval(
                "select sum(amount) from public.xp_ledger where profile_id = any($1)", [low, high]
            )
            == 20
        )


async def test_finalize_and_a_backdated_award_do_not_deadlock(db: Database, database_url: str) -> None:
    winner = await new_profile(db, "Winner")
    # A season that ended more than the late-award horizon (48 h) ago, so finalize_seasons takes it.
    last_month = (datetime.now(UTC).replace(day=1) - timedelta(days=40)).replace(day=10, hour=12)
    await award(db, winner, "xp_purchase", "earlier", amount=50, occurred_at=last_month)
    admin, one, two = [await asyncpg.connect(database_url) for _ in range(3)]

    async def backdated() -> str:
        async with one.transaction():
            await switch_role(one, "service_role")
            return await one.fetchval(
                "select public.award_xp($1, 'xp_purchase', 'backdated', 20, $2, '{}')", winner, last_month
            )

    async def finalize() -> str:
        async with two.transaction():
            await switch_role(two, "service_role")
            return await two.fetchval("select public.finalize_seasons()")

    try:
        async with admin.transaction():
            await key_lock(admin, "backdated")
            award_task = asyncio.ensure_future(backdated())
            await waiting_backends(admin, 1)
            finalize_task = asyncio.ensure_future(finalize())
            await waiting_backends(admin, 2)
        results = await asyncio.gather(award_task, finalize_task, return_exceptions=True)
    finally:
        for conn in (admin, one, two):
            await conn.close()
    assert not [r for r in results if isinstance(r, BaseException)], results
    async with db.as_service() as conn:
        assert await conn.fetchval("select xp from public.season_results where profile_id = $1", winner) == 70


async def test_rpc_retries_a_serialization_failure(db: Database) -> None:
    async with db.pool.acquire() as conn:
        await conn.execute(
            """
            create sequence public.flaky_calls;
            create function public.flaky(fail_times integer) returns bigint language plpgsql as $$
            declare n bigint := nextval('public.flaky_calls');
            begin
              if n <= fail_times then
                raise exception 'try again (%)', n
                  using errcode = case when n % 2 = 1 then '40001' else '40P01' end;
              end if;
              return n;
            end $$;
            grant usage on sequence public.flaky_calls to service_role;
            grant execute on function public.flaky(integer) to service_role;
            """
        )
    assert await db.rpc("flaky", fail_times=2) == 3  # a 40001 and a 40P01, then it ran
    async with db.pool.acquire() as conn:
        await conn.execute("select setval('public.flaky_calls', 3)")
    with pytest.raises(asyncpg.SerializationError):
        await db.rpc("flaky", fail_times=100)  # gives up after 4 tries
    async with db.pool.acquire() as conn:
        assert await conn.fetchval("select last_value from public.flaky_calls") == 7


async def test_retry_does_not_repeat_other_errors() -> None:
    calls = 0

    async def failing() -> None:
        nonlocal calls
        calls += 1
        raise asyncpg.UniqueViolationError("duplicate")

    with pytest.raises(asyncpg.UniqueViolationError):
        await retry_transient(failing)
    assert calls == 1


# ---------------------------------------------------------------------------
# Check-ins across time zones (Low)
# ---------------------------------------------------------------------------


async def test_moving_the_time_zone_east_does_not_claim_a_second_day(db: Database) -> None:
    """UTC-12 then UTC+14 at one instant: the second check-in is not credited until the first day ends."""
    pid = await new_profile(db, "Drift")
    async with db.as_service() as conn:
        await conn.execute("update public.profiles set time_zone = 'Etc/GMT+12' where id = $1", pid)
    at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # 00:00 on the 1st in UTC-12
    first = await db.rpc("service_role_check_in", profile_id=pid, at=at)
    async with db.as_service() as conn:
        await conn.execute("update public.profiles set time_zone = 'Pacific/Kiritimati' where id = $1", pid)
    again = await db.rpc("service_role_check_in", profile_id=pid, at=at)  # 02:00 on the 2nd in UTC+14
    assert (first["checked_in"], again["checked_in"]) == (True, False)
    assert again["done_today"] is True
    assert again["next_check_in_at"] == "2026-03-02T12:00:00.000000Z"  # the UTC-12 day of the 1st ends
    later = await db.rpc("service_role_check_in", profile_id=pid, at=datetime(2026, 3, 2, 12, 0, tzinfo=UTC))
    assert later["checked_in"] is True and later["local_date"] == "2026-03-03"
    async with db.as_service() as conn:
        assert await conn.fetchval("select count(*) from public.check_ins where profile_id = $1", pid) == 2


# ---------------------------------------------------------------------------
# Display names and avatars (Low)
# ---------------------------------------------------------------------------


async def edit(db: Database, pid: UUID, changes: dict[str, object]) -> dict[str, object]:
    return await db.rpc("update_my_profile", role="authenticated", claims=member_claims(pid), changes=changes)


@pytest.mark.parametrize(
    "name",
    ["Ada\u202egnp.exe", "A\u200bda", "Ada\u2066x\u2069", "Ada\x07", "Ada\u00ad", "\ufeffAda", "A\nda"],
)
async def test_display_names_refuse_bidi_zero_width_and_control_characters(db: Database, name: str) -> None:
    pid = await new_profile(db, "Ada")
    await refused(edit(db, pid, {"display_name": name}), "XPNAM")


async def test_display_names_are_nfc_and_outside_names_are_cleaned(db: Database) -> None:
    pid = await new_profile(db, "Ada")
    assert (await edit(db, pid, {"display_name": "Zoe\u0301"}))["display_name"] == "Zo\u00e9"
    other = await new_profile(db, "\u202eEve\u200b\x01")  # ensure_profile cleans what a provider sends
    async with db.as_service() as conn:
        assert await conn.fetchval("select display_name from public.profiles where id = $1", other) == "Eve"


@pytest.mark.parametrize(
    "url",
    [
        'https://x.example/a"onerror="alert(1)',
        "https://x.example/a b",
        "https://x.example/a'b",
        "https://x.example/<script>",
        "https:// x.example/a",
        "https://x.example\\@evil.example/",
        "javascript:alert(1)",
    ],
)
async def test_avatar_urls_must_be_clean_https(db: Database, url: str) -> None:
    pid = await new_profile(db, "Ada")
    await refused(edit(db, pid, {"avatar_url": url}), "XPURL")


async def test_clean_avatar_urls_are_kept(db: Database) -> None:
    pid = await new_profile(db, "Ada")
    url = "https://cdn.discordapp.com/avatars/1/abc.png?size=128"
    assert (await edit(db, pid, {"avatar_url": url}))["avatar_url"] == url


# ---------------------------------------------------------------------------
# Archived season ranks follow leaderboard privacy (Low)
# ---------------------------------------------------------------------------


async def test_hidden_members_take_no_archived_rank_or_reward(db: Database) -> None:
    # A season that ended more than the late-award horizon (48 h) ago, so finalize_seasons takes it.
    last_month = (datetime.now(UTC).replace(day=1) - timedelta(days=40)).replace(day=10, hour=12)
    hidden, best, second = [await new_profile(db, name) for name in ("Hidden", "Best", "Second")]
    for pid, amount in ((hidden, 300), (best, 200), (second, 100)):
        await award(db, pid, "xp_purchase", f"s-{pid}", amount=amount, occurred_at=last_month)
    await edit(db, hidden, {"leaderboard_visible": False})
    await db.rpc("finalize_seasons")
    async with db.as_service() as conn:
        rows = await conn.fetch(
            "select r.profile_id, r.rank, r.reward_xp from public.season_results r"
            " join public.seasons s on s.id = r.season_id where s.layer_slug = 'cyber'"
        )
    by_profile = {r["profile_id"]: (r["rank"], r["reward_xp"]) for r in rows}
    assert by_profile[best][0] == 1 and by_profile[second][0] == 2
    assert by_profile[best][1] > 0
    assert by_profile[hidden] == (1, 0)  # the place they would see for themselves, no reward slot
    async with db.as_anon() as conn:
        listed = await conn.fetchval(
            "select public.list_season_results(season_id => (select r.season_id from public.season_results r"
            " where r.profile_id = $1))",
            best,
        )
    assert [item["profile_id"] for item in listed["items"]] == [str(best), str(second)]
    assert [item["rank"] for item in listed["items"]] == [1, 2]


# ---------------------------------------------------------------------------
# What members read of each other's profiles (Low)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("column", ["bio", "social_links", "points", "updated_at"])
async def test_members_cannot_read_private_profile_columns(db: Database, column: str) -> None:
    me, other = await new_profile(db, "Me"), await new_profile(db, "Other")
    for target in (other, me):  # own row too: the owner reads them through my_profile
        async with db.pool.acquire() as conn, conn.transaction():
            await switch_role(conn, "authenticated", member_claims(me))
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetchval(f"select {column} from public.profiles where id = $1", target)


async def test_owner_reads_their_whole_profile_and_the_dashboard_still_has_points(db: Database) -> None:
    me = await new_profile(db, "Me")
    await award(db, me, "xp_purchase", "p", amount=40)
    await edit(db, me, {"bio": "hello", "social_links": {"site": "https://me.example"}})
    mine = await db.rpc("my_profile", role="authenticated", claims=member_claims(me))
    assert (mine["bio"], mine["social_links"], mine["points"]) == (
        "hello",
        {"site": "https://me.example"},
        40,
    )
    stats = await db.rpc("dashboard_stats", role="authenticated", claims=member_claims(me), profile_id=me)
    assert stats["points"] == 40
    statement = await db.rpc("points_statement", role="authenticated", claims=member_claims(me))
    assert statement["balance"] == 40
    async with db.as_anon() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetchval("select public.my_profile()")
