"""Leaderboard latency: xpbase's RPCs against a Redis sorted set of the same data, in the same run.

    python bench/leaderboard.py [--profiles 1000000] [--samples 1000]

Setup (not measured): a throwaway embedded Postgres (or DATABASE_URL's server,
in a new database ``xpbase_bench_<pid>`` that is dropped afterwards) with the
whole schema; N profiles loaded with one ``insert ... select
generate_series`` (skewed XP like a real community: most members have little,
a few have a lot; 2% hide themselves), the leaderboard counts rebuilt (the
load skips triggers), VACUUM ANALYZE, 5,000 real awards through ``award_xp``
and one run of the compaction job. A last row measures the rank again after
another 5,000 awards whose count changes are left unfolded (readers add them
in), as just before the compaction job runs. A private
``redis-server`` on a free loopback port gets the visible members in one
sorted set (score = XP, member = profile id) through pipelined ZADDs.

Measured, one request at a time from one client, each a full round trip:

- top 50: ``public.leaderboard()`` as anon  vs  ``ZREVRANGE board 0 49 WITHSCORES``
- rank:   ``public.leaderboard_rank(me)`` as the member  vs  ``ZREVRANK`` + ``ZSCORE`` + ``ZCARD`` pipelined
          (the same answer: rank, XP, total)
- around: ``public.leaderboard_around(me, radius => 5)`` as the member  vs  ``ZREVRANK`` then
          ``ZREVRANGE rank-5 rank+5 WITHSCORES``

Every Postgres call does what PostgREST does: a transaction that sets the role
and ``request.jwt.claims``, calls the function and commits; the four statements
go in one network round trip (psycopg pipeline mode), as redis-py sends a
pipeline. Members are sampled uniformly, so a typical "me" sits mid-board.

Prints p50 and p99 of each, and the ratio xpbase / Redis (target: at most 2).
The first row, "floor", is the fixed cost of any such request (``select 1``
inside the role switch) against Redis's PING: no RPC can be cheaper than that.

Then the same calls as each server counts them (issue 16, item 7), which
leaves out the network, the client libraries and the round trip: Postgres'
mean execution time per call from ``pg_stat_statements`` (the call's statement
alone, and the request: the call and the role-and-claims statement; begin and
commit are not counted there) against Redis's own ``usec`` per request from ``INFO
commandstats`` (the commands of one request added up). Both counters are
reset after the warm-up, so they hold exactly the timed calls. The embedded
server preloads pg_stat_statements (xpbase.embedded); on ``DATABASE_URL``'s
server the table is printed only when the extension collects there.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

try:
    import redis
except ImportError:  # pragma: no cover - the message is the point
    sys.exit("redis-py is missing: pip install -e '.[bench]'")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], redis.Redis]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed: apt-get install -y redis-server")
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--protected-mode",
            "yes",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(host="127.0.0.1", port=port)
    for _ in range(100):
        try:
            client.ping()
            return proc, client
        except redis.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("redis-server did not start")


def start_postgres(workdir: Path) -> tuple[str, Callable[[], None]]:
    """A database with the schema: DATABASE_URL's server (new database) or a throwaway embedded server
    (xpbase.embedded's, which preloads pg_stat_statements)."""
    import asyncio

    from xpbase import embedded
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
        server = embedded.server(workdir, tcp=False, cleanup_mode="delete")
        info = server.get_postmaster_info()
        url = f"postgresql://postgres@/postgres?host={info.socket_dir}&port={info.port}"
        cleanup = server.cleanup
    asyncio.run(migrate(url, REPO_ROOT / "supabase"))
    return url, cleanup


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
vacuum analyze public.leaderboard_counts;
set role service_role;
select public.award_xp(p.id, 'xp_purchase', 'bench-' || p.id, (1 + random() * 500)::integer)
  from public.profiles p tablesample system (1) limit %(awards)s;
select public.service_role_compact_leaderboard_counts();
reset role;
analyze public.leaderboard_count_deltas;
"""

#: Awards whose count changes are left unfolded, as just before the compaction job runs.
UNFOLDED_AWARDS = """
set role service_role;
select public.award_xp(p.id, 'xp_purchase', 'bench-unfolded-' || p.id, (1 + random() * 500)::integer)
  from public.profiles p tablesample system (1) limit %(awards)s;
reset role;
analyze public.leaderboard_count_deltas;
"""


#: Each operation's SQL as the bench sends it (pg_stat_statements finds the call by this text).
CALL_SQL = {
    "floor": "select 1",
    "top 50": "select * from public.leaderboard()",
    "rank": "select public.leaderboard_rank(%s::uuid)",
    "around": "select * from public.leaderboard_around(%s::uuid)",
}


def print_server_times(rows: list[tuple[str, tuple[float, float] | None, float]]) -> None:
    """The servers' own time per call (milliseconds) and the ratios."""
    if any(pg is None for _, pg, _ in rows):
        print("\nserver time: pg_stat_statements does not collect on this server (preload it to compare)")
        return
    print("\nserver time per call, as each server counts it (no network, no client); milliseconds\n")
    print(
        f"{'operation':<10} {'pg call':>9} {'pg request':>11} {'redis':>8}"
        f" {'call/redis':>11} {'request/redis':>14}"
    )
    for name, pg, rd in rows:
        assert pg is not None
        call, request = pg
        print(
            f"{name:<10} {call:>9.4f} {request:>11.4f} {rd:>8.4f} {call / rd:>10.2f}x {request / rd:>13.2f}x"
        )


def pg_call(
    conn: psycopg.Connection[Any], claims: dict[str, Any], sql: str, params: tuple[Any, ...]
) -> list[Any]:
    """One PostgREST-style request: begin, role + claims, the call, commit; one network round trip."""
    with conn.pipeline():
        conn.execute("begin")
        conn.execute(
            "select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)",
            (claims["role"], json.dumps(claims)),
        )
        cur = conn.execute(sql, params)
        conn.execute("commit")
    return cur.fetchall()


def measure(
    fn: Callable[[int], Any], samples: int, warmup: int, after_warmup: Callable[[], Any] | None = None
) -> list[float]:
    """Seconds per call of ``fn(i)`` for ``samples`` calls after ``warmup`` untimed ones (``after_warmup``
    runs in between: the bench resets the servers' own counters there)."""
    for i in range(warmup):
        fn(i)
    if after_warmup is not None:
        after_warmup()
    out = []
    for i in range(samples):
        start = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - start)
    return out


def pg_server_ms(admin: psycopg.Connection[Any], call_sql: str) -> tuple[float, float] | None:
    """Mean execution time per call in milliseconds from pg_stat_statements since its last reset: the
    statement ``call_sql`` (as pg_stat_statements writes it: parameters and constants become $n), and
    the request (that statement and the role-and-claims statement, each run once per call; begin and
    commit do not show in pg_stat_statements). None when pg_stat_statements does not collect here."""
    # The constant of "select 1" is kept or made $1 depending on how the statement was first planned.
    texts = {call_sql.replace("%s", "$1"), call_sql.replace("select 1", "select $1")}
    rows = admin.execute(
        "select query, calls, total_exec_time from extensions.pg_stat_statements"
        " where toplevel and dbid = (select oid from pg_database where datname = current_database())"
    ).fetchall()
    by_query = {query: (calls, total) for query, calls, total in rows}
    found = [by_query[text] for text in texts if text in by_query]
    if not found:
        print(f"pg_stat_statements has none of {sorted(texts)}: {sorted(by_query)}", file=sys.stderr)
        return None
    calls, total = (sum(column) for column in zip(*found, strict=True))
    setup = [q for q in by_query if q.startswith("select set_config(")]
    request = total + sum(by_query[q][1] for q in setup)
    return total / calls, request / calls


def redis_server_ms(r: redis.Redis, calls: int) -> float:
    """Redis's own time per request in milliseconds (INFO commandstats ``usec`` of every command since the
    last CONFIG RESETSTAT, over ``calls`` requests)."""
    stats = r.info("commandstats")
    return sum(v["usec"] for k, v in stats.items() if k.startswith("cmdstat_") and k != "cmdstat_config") / (
        calls * 1000
    )


def pg_reset(admin: psycopg.Connection[Any]) -> bool:
    """Reset pg_stat_statements; False when it is not installed or not loaded on this server."""
    try:
        admin.execute("select extensions.pg_stat_statements_reset()")
        return True
    except psycopg.Error:
        return False


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--profiles", type=int, default=1_000_000, help="profiles to load (default 1,000,000)"
    )
    parser.add_argument(
        "--awards",
        type=int,
        default=5000,
        help="awards through award_xp after the load, left unfolded (5000)",
    )
    parser.add_argument("--samples", type=int, default=1000, help="timed calls per operation (default 1000)")
    parser.add_argument("--warmup", type=int, default=100, help="untimed calls first (default 100)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="xpbase-bench-"))
    redis_proc, r = start_redis(workdir)
    cleanup_pg: Callable[[], None] | None = None
    try:
        t0 = time.perf_counter()
        url, cleanup_pg = start_postgres(workdir)
        with psycopg.connect(url, autocommit=True) as admin:
            for statement in LOAD_PROFILES.split(";\n"):
                if statement.strip():
                    admin.execute(
                        statement.replace("%(n)s", str(int(args.profiles))).replace(
                            "%(awards)s", str(args.awards)
                        )
                    )
            members = admin.execute(
                "select id::text, xp from public.profiles where leaderboard_visible"
            ).fetchall()
        print(
            f"setup: {args.profiles:,} profiles in Postgres in {time.perf_counter() - t0:.1f} s", flush=True
        )
        t0 = time.perf_counter()
        pipe = r.pipeline(transaction=False)
        for i in range(0, len(members), 10_000):
            pipe.zadd("board", {pid: xp for pid, xp in members[i : i + 10_000]})
            pipe.execute()
        print(
            f"setup: {r.zcard('board'):,} visible members in Redis in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )

        rng = random.Random(42)
        sample = [pid for pid, _ in rng.choices(members, k=args.samples + args.warmup)]
        conn = psycopg.connect(url, autocommit=True)
        anon = {"role": "anon"}

        def member(i: int) -> dict[str, Any]:
            return {"role": "authenticated", "aud": "authenticated", "sub": sample[i]}

        def redis_rank(i: int) -> Any:
            pipe = r.pipeline(transaction=False)
            pipe.zrevrank("board", sample[i]).zscore("board", sample[i]).zcard("board")
            return pipe.execute()

        def redis_around(i: int) -> Any:
            rank = r.zrevrank("board", sample[i])
            return r.zrevrange("board", max(rank - 5, 0), rank + 5, withscores=True)

        ops: list[tuple[str, Callable[[int], Any], Callable[[int], Any]]] = [
            # The fixed cost of one PostgREST-style request (begin, role and claims, select 1, commit)
            # against PING.
            ("floor", lambda i: pg_call(conn, anon, CALL_SQL["floor"], ()), lambda i: r.ping()),
            (
                "top 50",
                lambda i: pg_call(conn, anon, CALL_SQL["top 50"], ()),
                lambda i: r.zrevrange("board", 0, 49, withscores=True),
            ),
            (
                "rank",
                lambda i: pg_call(conn, member(i), CALL_SQL["rank"], (sample[i],)),
                redis_rank,
            ),
            (
                "around",
                lambda i: pg_call(conn, member(i), CALL_SQL["around"], (sample[i],)),
                redis_around,
            ),
        ]
        # Sanity: both sides agree on a member's rank.
        pid = sample[0]
        pg_rank = pg_call(conn, member(0), "select public.leaderboard_rank(%s::uuid)", (pid,))[0][0]["rank"]
        redis_ahead = r.zcount("board", f"({int(r.zscore('board', pid) or 0)}", "+inf")
        assert pg_rank == redis_ahead + 1, (pg_rank, redis_ahead)

        print(f"\n{args.samples} calls each after {args.warmup} warm-up calls; latency in milliseconds\n")
        print(
            f"{'operation':<10} {'xpbase p50':>11} {'p99':>8} {'redis p50':>10} {'p99':>8}"
            f" {'ratio p50':>10} {'p99':>7}"
        )
        worst = 0.0
        stats_admin = psycopg.connect(url, autocommit=True)
        server_times: list[tuple[str, tuple[float, float] | None, float]] = []
        for name, pg_fn, redis_fn in ops:
            collects = pg_reset(stats_admin)
            pg = measure(pg_fn, args.samples, args.warmup, lambda: pg_reset(stats_admin))
            pg_server = pg_server_ms(stats_admin, CALL_SQL[name]) if collects else None
            rd = measure(redis_fn, args.samples, args.warmup, r.config_resetstat)
            server_times.append((name, pg_server, redis_server_ms(r, args.samples)))
            p50, p99 = pct(pg, 0.5), pct(pg, 0.99)
            r50, r99 = pct(rd, 0.5), pct(rd, 0.99)
            if name != "floor":
                worst = max(worst, p50 / r50)
            print(
                f"{name:<10} {p50 * 1e3:>11.3f} {p99 * 1e3:>8.3f} {r50 * 1e3:>10.3f} {r99 * 1e3:>8.3f}"
                f" {p50 / r50:>9.2f}x {p99 / r99:>6.2f}x",
                flush=True,
            )
        with psycopg.connect(url, autocommit=True) as admin:
            for statement in UNFOLDED_AWARDS.split(";\n"):
                if statement.strip():
                    admin.execute(statement.replace("%(awards)s", str(args.awards)))
            pending = admin.execute("select count(*) from public.leaderboard_count_deltas").fetchone()
        pg = measure(ops[2][1], args.samples, args.warmup)
        rd = measure(ops[2][2], args.samples, args.warmup)
        p50, p99, r50, r99 = pct(pg, 0.5), pct(pg, 0.99), pct(rd, 0.5), pct(rd, 0.99)
        print(
            f"{'rank*':<10} {p50 * 1e3:>11.3f} {p99 * 1e3:>8.3f} {r50 * 1e3:>10.3f} {r99 * 1e3:>8.3f}"
            f" {p50 / r50:>9.2f}x {p99 / r99:>6.2f}x",
            flush=True,
        )
        unfolded = pending[0] if pending else 0
        print(f"rank*: after {args.awards:,} more awards, {unfolded:,} count changes unfolded")
        print(f"\nworst p50 ratio {worst:.2f}x (target: each at most 2x Redis)")
        print_server_times(server_times)
        stats_admin.close()
        conn.close()
    finally:
        redis_proc.terminate()
        redis_proc.wait()
        if cleanup_pg is not None:
            cleanup_pg()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
