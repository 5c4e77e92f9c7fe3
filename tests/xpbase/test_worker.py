"""The queue worker (xpbase/worker.py) against real stand-ins: FCM, a push service, an SMTP server.

Workers run in this process (a task of the test's loop, on the per-test
database) except in the kill -9 test, which runs ``xpbase worker`` as a child
process. Counts are small: a handful of notifications, two workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.delivery_standins import PROJECT, FCMStandIn, SMTPStandIn, Subscription, WebPushStandIn, b64url
from tests.helpers import award, new_profile
from tests.sql.reviews_world import EVERY_DAY, professional, weekly
from tests.sql.reviews_world import request as review_request
from xpbase.db import Database
from xpbase.settings import Settings
from xpbase.worker import Worker

NO_SCHEDULES = {
    f"schedule_{name}": ""
    for name in (
        "finalize_seasons",
        "compact_leaderboards",
        "purge_auth",
        "retention",
        "streak_reminders",
        "sweep_deliveries",
        "match_reviews",
        "reconcile_payments",
    )
}


@pytest.fixture
async def fcm() -> AsyncIterator[FCMStandIn]:
    standin = FCMStandIn()
    await standin.start()
    try:
        yield standin
    finally:
        await standin.stop()


@pytest.fixture
async def push() -> AsyncIterator[WebPushStandIn]:
    standin = WebPushStandIn()
    await standin.start()
    try:
        yield standin
    finally:
        await standin.stop()


@pytest.fixture
def smtp() -> Iterator[SMTPStandIn]:
    standin = SMTPStandIn()
    standin.start()
    try:
        yield standin
    finally:
        standin.stop()


@pytest.fixture
def settings(
    database_url: str, fcm: FCMStandIn, push: WebPushStandIn, smtp: SMTPStandIn, tmp_path: Path
) -> Settings:
    """Settings pointing every channel at its stand-in; short retries; no periodic task."""
    vapid = ec.generate_private_key(ec.SECP256R1())
    push.vapid_public_key = vapid.public_key()
    assert smtp.controller is not None
    values: dict[str, Any] = {
        "DATABASE_URL": database_url,
        "fcm_project_id": PROJECT,
        "fcm_service_account_file": fcm.service_account_file(tmp_path),
        "fcm_endpoint": fcm.base,
        "vapid_private_key": b64url(vapid.private_numbers().private_value.to_bytes(32, "big")),
        "vapid_subject": "mailto:ops@xpbase.test",
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp.controller.port,
        "smtp_tls": "none",
        "smtp_from": "xpbase <noreply@xpbase.test>",
        "delivery_backoff_base_seconds": 0.2,
        "delivery_backoff_max_seconds": 1,
        "delivery_lease_seconds": 2,
        **NO_SCHEDULES,
    }
    return Settings(_env_file=None, **values)


@contextlib.asynccontextmanager
async def working(worker: Worker, db: Database, **options: Any) -> AsyncIterator[Worker]:
    """``worker`` running as a task of this loop until the block ends."""
    task = asyncio.create_task(
        worker.run(
            database=db, concurrency=4, fetch_job_polling_interval=0.2, shutdown_graceful_timeout=1, **options
        )
    )
    try:
        yield worker
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(check: Any, rounds: int = 300) -> None:
    """Wait (0.05 s steps, ``rounds`` at most) until ``await check()`` is true; assert it became true."""
    for _ in range(rounds):
        if await check():
            return
        await asyncio.sleep(0.05)
    assert await check()


async def member(db: Database, push: WebPushStandIn, name: str = "Ada") -> tuple[UUID, Subscription]:
    """A member with an email identity, an FCM token and a Web Push subscription (and no Discord)."""
    profile = await new_profile(db, name, provider="github", subject=f"gh-{name}")
    await db.rpc(
        "service_role_link_identity",
        profile_id=profile,
        provider="email",
        subject=f"{name.lower()}@example.org",
        display_name=None,
    )
    sub = push.subscribe()
    async with db.as_member(profile) as conn:
        await conn.fetchval("select public.register_push_device('fcm', $1)", f"fcm-{name}")
        await conn.fetchval(
            "select public.register_push_device('webpush', $1, $2, $3)", sub.endpoint, sub.p256dh, sub.auth
        )
    return profile, sub


async def notify(
    db: Database, profile: UUID, kind: str = "tier_up", title: str = "Tier Member reached"
) -> int:
    async with db.pool.acquire() as conn:
        return int(
            await conn.fetchval(
                "insert into public.notifications (profile_id, kind, title, body)"
                " values ($1, $2, $3, 'Unlocked: rank cards') returning id",
                profile,
                kind,
                title,
            )
        )


async def states(db: Database) -> dict[str, str]:
    async with db.pool.acquire() as conn:
        return dict(await conn.fetch("select channel, state from private.deliveries order by id"))


async def test_a_notification_reaches_each_channel_once(
    db: Database, settings: Settings, fcm: FCMStandIn, push: WebPushStandIn, smtp: SMTPStandIn
) -> None:
    """FCM (with a service-account token), Web Push (VAPID, encrypted) and email each get it exactly once."""
    ada, _ = await member(db, push)
    await notify(db, ada)
    async with working(Worker(settings, settings.database_url or ""), db) as worker:

        async def all_sent() -> bool:
            return await states(db) == {"fcm": "sent", "webpush": "sent", "email": "sent"}

        await until(all_sent)
        assert await worker.sweep_deliveries() == 0  # nothing abandoned, nothing sent again
        await asyncio.sleep(0.5)
    assert [m["notification"]["title"] for m in fcm.sent] == ["Tier Member reached"]
    assert fcm.sent[0]["token"] == "fcm-Ada" and fcm.token_requests == 1
    assert [(m.payload["title"], m.payload["body"], m.vapid_sub) for m in push.posts] == [
        ("Tier Member reached", "Unlocked: rank cards", "mailto:ops@xpbase.test")
    ]
    assert len(smtp.messages) == 1
    message = smtp.messages[0]
    assert (message["To"], message["Subject"]) == ("ada@example.org", "Tier Member reached")
    assert message["Message-ID"].startswith("<xpbase-delivery-")
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and "Unlocked: rank cards" in text.get_content()
    assert html is not None and "<h1>Tier Member reached</h1>" in html.get_content()


async def test_fcm_unregistered_prunes_the_token(
    db: Database, settings: Settings, fcm: FCMStandIn, push: WebPushStandIn
) -> None:
    """FCM answers UNREGISTERED: the delivery is dead after one attempt and the device row is deleted."""
    ada, _ = await member(db, push)
    fcm.unregister("fcm-Ada")
    await notify(db, ada)
    async with working(Worker(settings, settings.database_url or ""), db):

        async def fcm_done() -> bool:
            return (await states(db)).get("fcm") == "dead"

        await until(fcm_done)
    async with db.pool.acquire() as conn:
        assert await conn.fetch("select platform from public.push_devices") == [("webpush",)]
        assert await conn.fetchval("select attempts from private.deliveries where channel = 'fcm'") == 1
    assert fcm.sent == []


async def test_503_with_retry_after_is_tried_again_after_that_long(
    db: Database, settings: Settings, fcm: FCMStandIn, push: WebPushStandIn
) -> None:
    """FCM 503 Retry-After: 1 -> the second attempt comes a second later (the backoff would be 60 s), once."""
    slow = settings.model_copy(
        update={"delivery_backoff_base_seconds": 60, "delivery_backoff_max_seconds": 60}
    )
    ada, _ = await member(db, push)
    fcm.script("fcm-Ada", ("status", 503, {"Retry-After": "1"}))
    await notify(db, ada)
    started = time.monotonic()
    async with working(Worker(slow, slow.database_url or ""), db):

        async def fcm_sent() -> bool:
            return (await states(db)).get("fcm") == "sent"

        await until(fcm_sent, rounds=400)
    assert time.monotonic() - started >= 1
    assert len(fcm.requests) == 2 and len(fcm.sent) == 1
    async with db.pool.acquire() as conn:
        assert await conn.fetchval("select attempts from private.deliveries where channel = 'fcm'") == 2


async def test_a_worker_killed_mid_delivery_is_replaced_and_the_device_shows_it_once(
    db: Database, settings: Settings, push: WebPushStandIn, database_url: str
) -> None:
    """kill -9 while the push service holds the request: the sweep resends after the lease, same Topic.

    The push service had accepted the first POST, so it sees two; it keeps one message per Topic (RFC 8030),
    and the Topic is the delivery's id: the device shows it once.
    """
    ada, sub = await member(db, push)
    async with db.as_member(ada) as conn:  # push only
        await conn.fetchval("select public.set_notification_preferences($1::jsonb)", {"tier_up": ["push"]})
        await conn.execute("delete from public.push_devices where platform = 'fcm'")
    push.script(sub.endpoint, ("hang",))
    await notify(db, ada)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "XPBASE_VAPID_PRIVATE_KEY": settings.vapid_private_key.get_secret_value(),
        "XPBASE_VAPID_SUBJECT": settings.vapid_subject,
        "XPBASE_DELIVERY_LEASE_SECONDS": "2",
        **{f"XPBASE_{k.upper()}": "" for k in NO_SCHEDULES},
    }
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "xpbase.cli", "worker", "--no-migrate", env=env, cwd=Path(__file__).parents[2]
    )
    try:
        for _ in range(600):
            if push.hanging.is_set():
                break
            await asyncio.sleep(0.05)
        assert push.hanging.is_set(), "the child worker never sent the push"
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
    assert child.returncode == -signal.SIGKILL
    assert await states(db) == {"webpush": "sending"}
    await asyncio.sleep(2)  # the lease ends
    sweeping = settings.model_copy(update={"schedule_sweep_deliveries": "* * * * * *"})
    async with working(Worker(sweeping, database_url), db):

        async def sent() -> bool:
            return await states(db) == {"webpush": "sent"}

        await until(sent)
    assert len(push.posts) == 2
    assert [m.payload["title"] for m in push.shown(sub)] == ["Tier Member reached"]
    async with db.pool.acquire() as conn:
        assert await conn.fetchval("select attempts from private.deliveries") == 2


async def test_two_workers_never_run_the_same_periodic_task_at_once(
    db: Database, settings: Settings, database_url: str
) -> None:
    """A task ticking every second that takes 1.2 s, on two workers: its runs never overlap."""
    every_second = settings.model_copy(update={"schedule_compact_leaderboards": "* * * * * *"})
    runs: list[tuple[float, float, str]] = []

    def slow(label: str) -> Any:
        async def compact_leaderboards() -> int:
            start = time.monotonic()
            await asyncio.sleep(1.2)
            runs.append((start, time.monotonic(), label))
            return 0

        return compact_leaderboards

    first, second = Worker(every_second, database_url), Worker(every_second, database_url)
    first.compact_leaderboards = slow("first")  # type: ignore[method-assign]
    second.compact_leaderboards = slow("second")  # type: ignore[method-assign]
    async with working(first, db), working(second, db):
        await asyncio.sleep(5)
    runs.sort()
    assert len(runs) >= 2
    for (_, end, _), (start, _, _) in itertools.pairwise(runs):
        assert start >= end, f"two runs overlapped: {runs}"


async def test_periodic_tasks_finalize_seasons_and_fold_leaderboard_counts(
    db: Database, settings: Settings
) -> None:
    """Scheduled every second, the worker finalizes an ended season and folds leaderboard count changes."""
    ada = await new_profile(db, "Ada")
    await award(db, ada, "xp_purchase", "old", amount=50, occurred_at=datetime(2026, 1, 15, tzinfo=UTC))
    every_second = settings.model_copy(
        update={
            "schedule_finalize_seasons": "* * * * * *",
            "schedule_compact_leaderboards": "* * * * * *",
            "schedule_purge_auth": "* * * * * *",
            "schedule_retention": "* * * * * *",
            "schedule_streak_reminders": "* * * * * *",
        }
    )

    async def done() -> bool:
        async with db.pool.acquire() as conn:
            finalized = await conn.fetchval(
                "select count(*) from public.seasons where finalized_at is not null"
            )
            pending = await conn.fetchval("select count(*) from public.leaderboard_count_deltas")
        return bool(finalized >= 1 and pending == 0)

    async with working(Worker(every_second, every_second.database_url or ""), db):
        await until(done, rounds=400)
    rank = await db.rpc("leaderboard_rank", profile_id=ada)
    assert rank["total"] == 1


async def test_scheduled_review_matching_books_each_request_once_on_two_workers(
    db: Database, settings: Settings, database_url: str
) -> None:
    """XPBASE_SCHEDULE_MATCH_REVIEWS every second on two workers: every open request is booked, once,
    and later ticks book nothing more."""
    await professional(db, "UTC", weekly(EVERY_DAY, "09:00", "17:00"), capacity=5)
    requests = [
        await review_request(db, await new_profile(db, f"R{i}"), "UTC", weekly(EVERY_DAY, "09:00", "17:00"))
        for i in range(4)
    ]
    every_second = settings.model_copy(update={"schedule_match_reviews": "* * * * * *"})

    async def booked() -> bool:
        async with db.pool.acquire() as conn:
            scheduled = await conn.fetchval(
                "select count(*) from public.review_requests where status = 'scheduled'"
            )
        return bool(scheduled == len(requests))

    first, second = Worker(every_second, database_url), Worker(every_second, database_url)
    async with working(first, db), working(second, db):
        await until(booked, rounds=400)
        await asyncio.sleep(2)  # two more ticks, which find nothing open
    async with db.pool.acquire() as conn:
        sessions = await conn.fetch("select request_id, status from public.review_sessions")
    assert sorted(s["request_id"] for s in sessions) == sorted(r["id"] for r in requests)
    assert {s["status"] for s in sessions} == {"scheduled"}


async def test_a_new_badge_is_evaluated_over_the_ledger_by_the_worker(
    db: Database, settings: Settings
) -> None:
    """Adding a badge queues xpbase.evaluate_badge; a worker runs it to done and the past award earns it."""
    pid = await new_profile(db, "Veteran")
    await award(db, pid, "challenge_completed", "old", amount=500)
    async with db.as_service() as conn:
        await conn.execute(
            "insert into public.badges (slug, name, kind, threshold)"
            " values ('veteran', 'Veteran', 'total_xp', 500)"
        )

    async def evaluated() -> bool:
        async with db.as_service() as conn:
            return (
                await conn.fetchval(
                    "select status from public.badge_evaluations where badge_slug = 'veteran'"
                )
                == "done"
            )

    async with working(Worker(settings, settings.database_url or ""), db):
        await until(evaluated)
    async with db.as_service() as conn:
        rows = await conn.fetch("select source from public.badge_awards where badge_slug = 'veteran'")
    assert [r["source"] for r in rows] == ["retroactive"]
