"""Where a benchmark database's server time goes, by SQL function: shared by the benchmarks' ``--profile``.

``track_functions = 'all'`` must be on for the sessions measured (``alter database ... set`` before they
connect) and the statistics reset (``pg_stat_reset()``) before them; this reads ``pg_stat_user_functions``
after they have exited.
"""

from __future__ import annotations

import asyncio

import asyncpg
from rich.console import Console
from rich.table import Table


async def enable(url: str, dbname: str) -> None:
    """Turn on ``track_functions = 'all'`` for new sessions of ``dbname`` and reset the statistics."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"alter database \"{dbname}\" set track_functions = 'all'")
        await conn.execute("select pg_stat_reset()")
    finally:
        await conn.close()


async def print_functions(
    url: str, console: Console, per: tuple[str, int] | None = None, limit: int = 15
) -> None:
    """The database's SQL functions and trigger functions by self time (ms), top ``limit``.

    ``per``: (unit, count), e.g. ("award", 3200), adds a column of self time per unit in µs.
    """
    conn = await asyncpg.connect(url)
    try:
        await asyncio.sleep(1)  # the measured backends have exited: their statistics are flushed
        functions = await conn.fetch(
            "select schemaname || '.' || funcname as name, calls, total_time, self_time"
            " from pg_stat_user_functions order by self_time desc limit $1",
            limit,
        )
    finally:
        await conn.close()
    table = Table(title="SQL functions and triggers by time of their own (track_functions = all)")
    columns = ["function", "calls", "total s", "self s", "self ms / call"]
    if per:
        columns.append(f"self µs / {per[0]}")
    for column in columns:
        table.add_column(column, justify="left" if column == "function" else "right")
    for r in functions:
        cells = [
            r["name"],
            f"{r['calls']:,}",
            f"{r['total_time'] / 1000:.1f}",
            f"{r['self_time'] / 1000:.1f}",
            f"{r['self_time'] / max(r['calls'], 1):.4f}",
        ]
        if per:
            cells.append(f"{r['self_time'] * 1000 / max(per[1], 1):,.0f}")
        table.add_row(*cells)
    console.print(table)
