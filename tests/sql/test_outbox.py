"""The notification outbox in SQL (supabase/sql/77_outbox.sql): routing, claims, retries, quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from tests.helpers import acting_as, new_profile
from xpbase.db import Database
from xpbase.errors import DomainError
from xpbase.models.outbox import Claim, DiscordClaim, Finished, Purged

KEYS = ("B" + "A" * 86, "c" * 22)


def discord_id(name: str) -> str:
    return str(10**17 + sum(map(ord, name)))


async def member(db: Database, name: str = "Ada", *, email: bool = True, discord: bool = True) -> UUID:
    """A profile with a Discord identity, an email identity, an FCM device and a Web Push subscription."""
    profile = await new_profile(db, name, provider="discord", subject=discord_id(name))
    if not discord:
        async with db.pool.acquire() as conn:
            await conn.execute("delete from public.identities where profile_id = $1", profile)
    if email:
        await db.rpc(
            "service_role_link_identity",
            profile_id=profile,
            provider="email",
            subject=f"{name.lower()}@example.org",
            display_name=None,
        )
    async with db.as_member(profile) as conn:
        await conn.fetchval("select public.register_push_device('fcm', $1)", f"fcm-{name}")
        await conn.fetchval(
            "select public.register_push_device('webpush', $1, $2, $3)", f"https://push.example/{name}", *KEYS
        )
    return profile


async def notify(
    db: Database, profile: UUID, kind: str = "tier_up", title: str = "Tier Member reached"
) -> int:
    async with db.pool.acquire() as conn:
        return int(
            await conn.fetchval(
                "insert into public.notifications (profile_id, kind, title) values ($1, $2, $3) returning id",
                profile,
                kind,
                title,
            )
        )


async def deliveries(db: Database, profile: UUID | None = None) -> list[asyncpg.Record]:
    async with db.pool.acquire() as conn:
        return list(
            await conn.fetch(
                "select * from private.deliveries where $1::uuid is null or profile_id = $1 order by id",
                profile,
            )
        )


async def jobs(db: Database) -> list[asyncpg.Record]:
    """The delivery jobs (queue deliveries); the default badges' evaluation jobs wait on queue badges."""
    async with db.pool.acquire() as conn:
        return list(
            await conn.fetch(
                "select * from procrastinate.procrastinate_jobs where queue_name = 'deliveries' order by id"
            )
        )


async def claim(db: Database, delivery_id: int, lease: int = 60) -> Claim:
    return Claim.model_validate(
        await db.rpc("service_role_claim_delivery", delivery_id=delivery_id, lease_seconds=lease)
    )


async def finish(db: Database, delivery_id: int, outcome: str, **options: Any) -> Finished:
    options = {"max_attempts": 3, "backoff_base_seconds": 10, "backoff_max_seconds": 100} | options
    return Finished.model_validate(
        await db.rpc("service_role_finish_delivery", delivery_id=delivery_id, outcome=outcome, **options)
    )


async def test_a_notification_becomes_one_delivery_per_channel_and_target(db: Database) -> None:
    """tier_up goes to Discord, email and push by default: a delivery each, a job for each but Discord."""
    ada = await member(db)
    notification = await notify(db, ada)
    rows = await deliveries(db, ada)
    assert sorted((r["channel"], r["target"]) for r in rows) == [
        ("discord_dm", discord_id("Ada")),
        ("email", "ada@example.org"),
        ("fcm", "fcm-Ada"),
        ("webpush", "https://push.example/Ada"),
    ]
    assert {r["notification_id"] for r in rows} == {notification}
    assert {r["state"] for r in rows} == {"pending"}
    queued = await jobs(db)
    assert sorted(j["args"]["delivery_id"] for j in queued) == sorted(
        r["id"] for r in rows if r["channel"] != "discord_dm"
    )
    assert {(j["queue_name"], j["task_name"], j["status"]) for j in queued} == {
        ("deliveries", "xpbase.deliver", "todo")
    }


async def test_deliveries_share_the_notifications_transaction(db: Database) -> None:
    """A notification rolled back leaves no delivery and no job behind."""
    ada = await member(db)
    async with db.pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await conn.execute(
            "insert into public.notifications (profile_id, kind, title) values ($1, 'tier_up', 'x')", ada
        )
        assert await conn.fetchval("select count(*) from private.deliveries") == 4
        await tx.rollback()
    assert await deliveries(db) == [] and await jobs(db) == []


async def test_per_kind_opt_out_and_in_app_opt_out(db: Database) -> None:
    """A kind routed nowhere makes no delivery; without in_app the row is stored already read."""
    ada = await member(db)
    async with db.as_member(ada) as conn:
        await conn.fetchval(
            "select public.set_notification_preferences($1::jsonb)",
            {"tier_up": [], "season_result": ["email"]},
        )
    quiet = await notify(db, ada, "tier_up")
    mailed = await notify(db, ada, "season_result")
    unknown = await notify(db, ada, "matrix_kind")
    rows = await deliveries(db, ada)
    assert [(r["notification_id"], r["channel"]) for r in rows] == [(mailed, "email")]
    async with db.pool.acquire() as conn:
        read = dict(await conn.fetch("select id, read_at is not null from public.notifications"))
    assert read == {quiet: True, mailed: True, unknown: False}


async def test_enqueueing_twice_keeps_one_waiting_job(db: Database) -> None:
    """procrastinate's queueing lock: a delivery never has two waiting jobs (the sweep may enqueue again)."""
    ada = await member(db, discord=False, email=False)
    await notify(db, ada)
    before = await jobs(db)
    async with db.pool.acquire() as conn:
        await conn.execute("update private.deliveries set next_attempt_at = now() - interval '1 hour'")
    assert await db.rpc("service_role_sweep_deliveries", lease_seconds=60) == 2
    assert len(await jobs(db)) == len(before) == 2


async def test_claim_and_finish(db: Database) -> None:
    """A claim counts the attempt and hands out the message; a second claim sees it busy; sent is final."""
    ada = await member(db, discord=False, email=False)
    await notify(db, ada, title="Tier Member reached")
    first = (await deliveries(db, ada))[0]["id"]
    got = await claim(db, first)
    assert got.status == "claimed" and got.delivery is not None
    assert (got.delivery.title, got.delivery.attempts, got.delivery.idempotency_key) == (
        "Tier Member reached",
        1,
        f"xpbase-delivery-{first}",
    )
    assert (await claim(db, first)).status == "busy"
    assert (await finish(db, first, "sent")).state == "sent"
    again = await finish(db, first, "retry")
    assert (again.state, again.changed) == ("sent", False)
    assert (await claim(db, first)).status == "done"
    assert (await claim(db, 10**9)).status == "gone"
    with pytest.raises(DomainError) as caught:
        await finish(db, 10**9, "sent")
    assert caught.value.error.sqlstate == "XPNFD"


async def test_retries_back_off_honour_retry_after_and_end_dead(db: Database) -> None:
    """Backoff doubles with jitter in [0.5, 1]; Retry-After wins; the last attempt is dead, for admins."""
    ada = await member(db, discord=False, email=False)
    await notify(db, ada)
    target = (await deliveries(db, ada))[0]["id"]
    await claim(db, target)
    t0 = datetime.now(UTC)
    first = await finish(db, target, "retry", error="HTTP 500")
    assert first.state == "pending" and first.next_attempt_at is not None
    wait = datetime.fromisoformat(first.next_attempt_at) - t0
    assert timedelta(seconds=4.9) <= wait <= timedelta(seconds=10.5)
    assert (await claim(db, target)).status == "later"
    async with db.pool.acquire() as conn:
        await conn.execute("update private.deliveries set next_attempt_at = now() where id = $1", target)
    await claim(db, target)
    second = await finish(db, target, "retry", retry_after_seconds=42)
    assert second.next_attempt_at is not None
    assert abs((datetime.fromisoformat(second.next_attempt_at) - datetime.now(UTC)).total_seconds() - 42) < 2
    async with db.pool.acquire() as conn:
        await conn.execute("update private.deliveries set next_attempt_at = now() where id = $1", target)
    await claim(db, target)
    last = await finish(db, target, "retry", error="HTTP 503")
    assert (last.state, last.attempts) == ("dead", 3)
    dead = await db.rpc("dead_deliveries")
    assert [(d["id"], d["last_error"]) for d in dead] == [(target, "HTTP 503")]
    with pytest.raises(DomainError):
        await db.rpc(
            "dead_deliveries", role="authenticated", claims={"role": "authenticated", "sub": str(ada)}
        )


async def test_gone_prunes_the_device_and_drops_its_other_deliveries(db: Database) -> None:
    """FCM UNREGISTERED: the device row is deleted and its waiting deliveries are dropped, not sent."""
    ada = await member(db, discord=False, email=False)
    await notify(db, ada, "tier_up")
    await notify(db, ada, "season_result")
    fcm = [r["id"] for r in await deliveries(db, ada) if r["channel"] == "fcm"]
    await claim(db, fcm[0])
    assert (await finish(db, fcm[0], "gone", error="FCM: UNREGISTERED")).state == "dead"
    states = {r["id"]: r["state"] for r in await deliveries(db, ada)}
    assert (states[fcm[0]], states[fcm[1]]) == ("dead", "dropped")
    async with db.pool.acquire() as conn:
        assert await conn.fetch("select platform from public.push_devices") == [("webpush",)]


async def test_quiet_hours_defer_deliveries_and_claims(db: Database) -> None:
    """Inside quiet hours a new delivery is due at their end; a claim then answers later and re-enqueues."""
    ada = await member(db, discord=False, email=False)
    now = datetime.now(UTC)
    start = (now - timedelta(hours=1)).strftime("%H:%M")
    end = (now + timedelta(hours=2)).strftime("%H:%M")
    async with db.as_member(ada) as conn:
        await conn.fetchval("select public.set_notification_preferences('{}'::jsonb, $1, $2)", start, end)
    await notify(db, ada)
    rows = await deliveries(db, ada)
    due = rows[0]["next_attempt_at"]
    assert timedelta(hours=1, minutes=58) < due - now < timedelta(hours=2, minutes=1)
    assert {j["scheduled_at"] for j in await jobs(db)} == {due}
    async with db.pool.acquire() as conn:
        await conn.execute("update private.deliveries set next_attempt_at = now()")
    got = await claim(db, rows[0]["id"])
    assert got.status == "later" and got.next_attempt_at is not None
    assert (await deliveries(db, ada))[0]["attempts"] == 0


async def test_level_ups_in_a_burst_collapse_into_one_message(db: Database) -> None:
    """Untried level-up deliveries absorb the next; after one is sent, the next waits out the window."""
    ada = await member(db, discord=False, email=False)
    await notify(db, ada, "level_up", "Level 2 reached")
    await notify(db, ada, "level_up", "Level 3 reached")
    last = await notify(db, ada, "level_up", "Level 4 reached")
    rows = [r for r in await deliveries(db, ada) if r["channel"] == "fcm"]
    assert [(r["notification_id"], r["collapsed"]) for r in rows] == [(last, 2)]
    got = await claim(db, rows[0]["id"])
    assert got.delivery is not None and (got.delivery.title, got.delivery.collapsed) == ("Level 4 reached", 2)
    await finish(db, rows[0]["id"], "sent")
    await notify(db, ada, "level_up", "Level 5 reached")
    later = [r for r in await deliveries(db, ada) if r["channel"] == "fcm"][-1]
    assert timedelta(seconds=295) < later["next_attempt_at"] - datetime.now(UTC) <= timedelta(seconds=300)


async def test_the_bot_claims_discord_deliveries_once(db: Database) -> None:
    """Two claims at once never hand out the same DM; a finished DM is not handed out again."""
    ada = await member(db, email=False)
    await notify(db, ada)
    await notify(db, ada, "season_result", "Season 1: rank 1")
    first = DiscordClaim.model_validate(await db.rpc("service_role_claim_discord_deliveries", max_rows=1))
    second = DiscordClaim.model_validate(await db.rpc("service_role_claim_discord_deliveries", max_rows=5))
    assert len(first.deliveries) == 1 and len(second.deliveries) == 1
    assert first.deliveries[0].id != second.deliveries[0].id
    assert first.deliveries[0].target == discord_id("Ada")
    for d in (*first.deliveries, *second.deliveries):
        await finish(db, d.id, "sent")
    third = DiscordClaim.model_validate(await db.rpc("service_role_claim_discord_deliveries"))
    assert third.deliveries == []


async def test_streak_reminder_once_per_local_day(db: Database) -> None:
    """Members who checked in yesterday (local) and not today get one reminder after 20:00 local."""
    ada = await new_profile(db, "Ada")
    bob = await new_profile(db, "Bob")
    async with db.pool.acquire() as conn:
        await conn.execute("update public.profiles set time_zone = 'Asia/Kolkata' where id = $1", ada)
        for who in (ada, bob):
            await conn.execute(
                "insert into public.streaks (profile_id, current_streak, longest_streak, last_check_in_date)"
                " values ($1, 4, 4, '2026-03-01')",
                who,
            )
        await conn.execute(
            "update public.streaks set last_check_in_date = '2026-03-02' where profile_id = $1", bob
        )
    at = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # 20:30 in Kolkata
    assert await db.rpc("service_role_queue_streak_reminders", at=at) == 1
    assert await db.rpc("service_role_queue_streak_reminders", at=at + timedelta(minutes=15)) == 0
    assert await db.rpc("service_role_queue_streak_reminders", at=at - timedelta(hours=1)) == 0
    async with db.pool.acquire() as conn:
        rows = await conn.fetch(
            "select profile_id, data from public.notifications where kind = 'streak_reminder'"
        )
    assert [(r["profile_id"], r["data"]["local_date"]) for r in rows] == [(ada, "2026-03-02")]


async def test_retention_deletes_old_rows_once(db: Database) -> None:
    """Old chat, notifications (not while a delivery is open), finished deliveries go; again: none."""
    ada = await member(db, discord=False, email=False)
    await notify(db, ada)
    async with db.pool.acquire() as conn:
        await conn.execute(
            "insert into public.chat_messages (profile_id, author_name, body, created_at)"
            " values ($1, 'Ada', 'old', now() - interval '100 days'), ($1, 'Ada', 'new', now())",
            ada,
        )
        await conn.execute("update public.notifications set created_at = now() - interval '200 days'")
    kept = Purged.model_validate(await db.rpc("service_role_purge_old_messages"))
    assert (kept.chat_messages, kept.notifications, kept.deliveries) == (1, 0, 0)
    async with db.pool.acquire() as conn:
        await conn.execute(
            "update private.deliveries set state = 'sent', updated_at = now() - interval '40 days'"
        )
    gone = Purged.model_validate(await db.rpc("service_role_purge_old_messages"))
    assert (gone.chat_messages, gone.notifications, gone.deliveries) == (0, 1, 2)
    again = Purged.model_validate(await db.rpc("service_role_purge_old_messages"))
    assert (again.chat_messages, again.notifications, again.deliveries) == (0, 0, 0)


async def test_deliveries_never_sent_expire(db: Database) -> None:
    """A delivery still open after delivery_days (no bot drains Discord) is dropped, then deleted."""
    ada = await member(db, email=False)
    await notify(db, ada)
    async with db.pool.acquire() as conn:
        await conn.execute("update private.deliveries set created_at = now() - interval '31 days'")
    await db.rpc("service_role_purge_old_messages")
    assert {r["state"] for r in await deliveries(db, ada)} == {"dropped"}
    async with db.pool.acquire() as conn:
        await conn.execute("update private.deliveries set updated_at = now() - interval '31 days'")
    assert Purged.model_validate(await db.rpc("service_role_purge_old_messages")).deliveries == 3


async def test_no_api_role_reaches_the_queue_or_the_outbox(db: Database) -> None:
    """procrastinate's schema and private.deliveries are closed to every role PostgREST switches to."""
    ada = await new_profile(db, "Ada")
    statements = [
        "select count(*) from procrastinate.procrastinate_jobs",
        "insert into procrastinate.procrastinate_jobs (queue_name, task_name) values ('x', 'y')",
        "select procrastinate.procrastinate_register_worker_v1()",
        "select count(*) from private.deliveries",
    ]
    for role in ("anon", "authenticated", "service_role"):
        for statement in statements:
            async with acting_as(db, role, ada) as conn:
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(statement)


async def test_the_queues_functions_pin_their_search_path(db: Database) -> None:
    """Every procrastinate function runs with search_path '' and every table has row-level security."""
    async with db.pool.acquire() as conn:
        loose = await conn.fetch(
            "select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
            " where n.nspname = 'procrastinate'"
            " and not coalesce(p.proconfig, '{}') @> array['search_path=\"\"']"
        )
        open_tables = await conn.fetch(
            "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = 'procrastinate' and c.relkind = 'r' and not c.relrowsecurity"
        )
    assert (loose, open_tables) == ([], [])
