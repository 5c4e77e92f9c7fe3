"""Deliveries through the outbox and the job queue against a bare loop of the same HTTP posts, in one run.

    python bench/delivery.py [--notifications 100000] [--workers 1,2,4] [--concurrency 8] [--profiles 1000]

What it does:

1. Starts its own embedded Postgres in a new temporary folder (deleted at the
   end) and migrates it; makes ``--profiles`` members, each with one FCM device
   and tier_up routed to push only.
2. Starts the FCM stand-in of the tests (tests/delivery_standins.py: the
   service account token endpoint and ``messages:send``) in a process of its
   own, on loopback.
3. Baseline: a bare loop, in this process, of ``--notifications`` posts of the
   same FCM message bodies with httpx to the same stand-in, ``--concurrency``
   at a time (one access token fetched first). Posts/s.
4. For each worker count W: inserts ``--notifications`` tier_up notifications
   (the outbox trigger writes a delivery and a procrastinate job per row, in
   the same transaction; the insert rate is printed too), then starts W
   ``xpbase worker`` processes (``--concurrency`` jobs each) and waits until
   every delivery is sent. Deliveries/s is the count over the time from the
   first claim to the last ``sent`` (``private.deliveries`` timestamps), so
   process start-up is not counted.
5. Prints deliveries/s per W, the bare loop's posts/s, the ratio, and the
   queue's cost per delivery (1/rate - 1/bare) in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from xpbase import embedded
from xpbase.migrate import migrate
from xpbase.settings import REPO_ROOT

warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
console = Console(highlight=False)


def _standin(folder: str, ready: Any, stop: Any) -> None:
    """Process body: the FCM stand-in until ``stop`` is set; puts (base URL, key file), then counts."""
    from tests.delivery_standins import FCMStandIn

    async def main() -> None:
        standin = FCMStandIn()
        base = await standin.start()
        key_file = standin.service_account_file(Path(folder))
        ready.put((base, str(key_file)))
        await asyncio.to_thread(stop.wait)
        ready.put((len(standin.sent), len(standin.requests)))
        await standin.stop()

    asyncio.run(main())


async def bare_loop(base: str, key_file: str, total: int, concurrency: int) -> float:
    """``total`` FCM posts of the worker's message shape, ``concurrency`` at once; posts per second."""
    from google.auth.transport.requests import Request
    from google.oauth2 import service_account

    from tests.delivery_standins import PROJECT

    credentials = service_account.Credentials.from_service_account_file(
        key_file, scopes=["https://www.googleapis.com/auth/firebase.messaging"]
    )
    await asyncio.to_thread(credentials.refresh, Request())
    url = f"{base}/v1/projects/{PROJECT}/messages:send"
    headers = {"Authorization": f"Bearer {credentials.token}"}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)

    async def poster(client: httpx.AsyncClient) -> None:
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            key = f"xpbase-delivery-bare-{i}"
            message = {
                "message": {
                    "token": f"bench-{i % 1000}",
                    "notification": {"title": "Tier Member reached", "body": "Unlocked: bench"},
                    "data": {"delivery_id": key, "kind": "tier_up", "notification_id": str(i)},
                    "android": {"collapse_key": key},
                    "apns": {"headers": {"apns-collapse-id": key}},
                }
            }
            response = await client.post(url, json=message, headers=headers)
            response.raise_for_status()

    async with httpx.AsyncClient(timeout=30) as client:
        started = time.perf_counter()
        await asyncio.gather(*(poster(client) for _ in range(concurrency)))
        return total / (time.perf_counter() - started)


async def setup_members(conn: asyncpg.Connection, profiles: int) -> None:
    await conn.execute(
        """
        with made as (
          select public.ensure_profile('github', 'bench-' || g, 'Bench ' || g) as id
            from generate_series(1, $1) g
        )
        insert into public.push_devices (profile_id, platform, token)
        select m.id, 'fcm', 'bench-' || row_number() over () from made m
        """,
        profiles,
    )
    await conn.execute(
        "insert into public.notification_preferences (profile_id, channels)"
        """ select id, '{"tier_up": ["push"]}' from public.profiles"""
    )


async def insert_notifications(conn: asyncpg.Connection, total: int, batch: int = 5000) -> float:
    """``total`` tier_up notifications over every member, ``batch`` per transaction; rows per second."""
    started = time.perf_counter()
    done = 0
    while done < total:
        size = min(batch, total - done)
        await conn.execute(
            """
            with p as (select id, row_number() over (order by id) - 1 as n from public.profiles)
            insert into public.notifications (profile_id, kind, title, body)
            select p.id, 'tier_up', 'Tier Member reached', 'Unlocked: bench'
              from generate_series(0, $1 - 1) g
              join p on p.n = g % $2
            """,
            size,
            await conn.fetchval("select count(*) from public.profiles"),
        )
        done += size
    return total / (time.perf_counter() - started)


async def run_workers(
    env: dict[str, str], conn: asyncpg.Connection, workers: int, concurrency: int, total: int
) -> tuple[float, float]:
    """Start ``workers`` worker processes until ``total`` deliveries are sent; (deliveries/s, wall s)."""
    first_id = await conn.fetchval("select coalesce(max(id), 0) from private.deliveries where state = 'sent'")
    command = [
        sys.executable,
        "-m",
        "xpbase.cli",
        "worker",
        "--no-migrate",
        "--concurrency",
        str(concurrency),
    ]
    children = [
        await asyncio.create_subprocess_exec(
            *command, env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(workers)
    ]
    wall = time.perf_counter()
    try:
        while True:
            open_count = await conn.fetchval(
                "select count(*) from private.deliveries where state in ('pending', 'sending')"
            )
            if open_count == 0:
                break
            await asyncio.sleep(0.5)
    finally:
        for child in children:
            child.send_signal(signal.SIGTERM)
        for child in children:
            await child.wait()
    wall = time.perf_counter() - wall
    row = await conn.fetchrow(
        "select count(*) as sent, extract(epoch from max(sent_at) - min(claimed_at)) as seconds"
        " from private.deliveries where state = 'sent' and id > $1",
        first_id,
    )
    assert row["sent"] == total, f"{row['sent']} of {total} sent"
    return total / float(row["seconds"]), wall


async def main(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="xpbase-bench-delivery-"))
    ctx = mp.get_context("spawn")
    ready, stop = ctx.Queue(), ctx.Event()
    standin = ctx.Process(target=_standin, args=(str(root), ready, stop), daemon=True)
    try:
        url, _ = embedded.start(root / "pg")
        await migrate(url, REPO_ROOT / "supabase")
        standin.start()
        base, key_file = ready.get(timeout=60)
        conn = await asyncpg.connect(url)
        await setup_members(conn, args.profiles)
        console.print(
            f"[bold]{args.notifications:,}[/] notifications, workers {args.workers}, "
            f"concurrency {args.concurrency} per worker, {args.profiles:,} members; stand-in at {base}"
        )
        bare = await bare_loop(base, key_file, args.notifications, args.concurrency)
        console.print(f"bare loop: {bare:,.0f} posts/s")
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "XPBASE_FCM_PROJECT_ID": "xpbase-test",
            "XPBASE_FCM_SERVICE_ACCOUNT_FILE": key_file,
            "XPBASE_FCM_ENDPOINT": base,
            "XPBASE_LOG_LEVEL": "warning",
            **{
                f"XPBASE_SCHEDULE_{name}": ""
                for name in (
                    "FINALIZE_SEASONS",
                    "COMPACT_LEADERBOARDS",
                    "PURGE_AUTH",
                    "RETENTION",
                    "STREAK_REMINDERS",
                    "SWEEP_DELIVERIES",
                    "MATCH_REVIEWS",
                )
            },
        }
        table = Table(title="Deliveries through the outbox vs a bare loop of the same posts")
        for column in (
            "workers",
            "outbox insert rows/s",
            "deliveries/s",
            "÷ bare posts/s",
            "queue ms/delivery",
        ):
            table.add_column(column, justify="right")
        for workers in args.workers:
            inserted = await insert_notifications(conn, args.notifications)
            rate, wall = await run_workers(env, conn, workers, args.concurrency, args.notifications)
            console.print(
                f"{workers} worker(s): {rate:,.0f} deliveries/s ({wall:.1f} s wall),"
                f" inserts {inserted:,.0f}/s"
            )
            table.add_row(
                str(workers),
                f"{inserted:,.0f}",
                f"{rate:,.0f}",
                f"{rate / bare:.2f}",
                f"{1000 / rate - 1000 / bare:.2f}",
            )
        table.add_row("bare loop", "", f"{bare:,.0f}", "1.00", "0")
        console.print(table)
        stop.set()
        sent, requests = ready.get(timeout=60)
        console.print(f"stand-in: {sent:,} messages accepted of {requests:,} posts")
        await conn.close()
    finally:
        stop.set()
        standin.join(timeout=10)
        embedded.stop(root / "pg")
        shutil.rmtree(root, ignore_errors=True)


def _counts(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--notifications", type=int, default=100_000, help="notifications per run (default 100000)"
    )
    parser.add_argument("--workers", type=_counts, default=[1, 2, 4], help="worker counts (default 1,2,4)")
    parser.add_argument("--concurrency", type=int, default=8, help="jobs at once per worker (default 8)")
    parser.add_argument(
        "--profiles", type=int, default=1000, help="members, one FCM device each (default 1000)"
    )
    asyncio.run(main(parser.parse_args()))
