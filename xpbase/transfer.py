"""``xpbase import mee6|amari|polaris|levelup|csv`` and ``xpbase export``: a server moved in, the data out.

The import reads the file as a stream (xpbase.importers), sends batches of 1,000 members to
``admin_import_members`` as service_role, shows a progress bar (bytes of the file) and then rich tables of
what changed (or, with ``--dry-run``, would change): members per status, XP, levels, level roles, and
every bad row with where it is in the file and why.

The export streams tables out of the database with a server-side cursor (a million rows never sit in
memory), as CSV or JSON lines, one file per table.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Literal

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn
from rich.table import Table

from xpbase.db import Database
from xpbase.importers import SOURCES, ImportSummary, Source, run_import
from xpbase.rpc import PostgresRPC

#: What ``xpbase export`` writes: table name -> the query (ordered, so that exports compare).
EXPORTS: dict[str, str] = {
    "profiles": (
        "select p.id as profile_id, i.subject as discord_id, p.display_name, p.xp, p.level, p.tier, p.points,"
        " p.leaderboard_visible, p.created_at,"
        " (select jsonb_object_agg(pl.layer_slug, pl.xp) from public.profile_layers pl"
        "   where pl.profile_id = p.id) as layers"
        " from public.profiles p"
        " left join public.identities i on i.profile_id = p.id and i.provider = 'discord'"
        " order by p.created_at, p.id"
    ),
    "ledger": (
        "select l.id, l.profile_id, l.activity_slug, l.layer_slug, l.season_id, l.amount, l.season_amount,"
        " l.points, l.occurred_at, l.recorded_at, l.idempotency_key, l.actor_id, l.actor_role, l.reason,"
        " l.reverses_id from public.xp_ledger l order by l.id"
    ),
    "seasons": (
        "select s.id, s.layer_slug, s.name, s.starts_at, s.ends_at, s.finalized_at from public.seasons s"
        " order by s.id"
    ),
    "season_scores": (
        "select s.season_id, s.profile_id, s.xp, s.reached_at from public.season_scores s"
        " order by s.season_id, s.profile_id"
    ),
    "server_members": (
        "select m.guild_id, m.profile_id, m.first_seen_at, m.last_seen_at from public.discord_guild_members m"
        " order by m.guild_id, m.profile_id"
    ),
}


def _text(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


async def export_rows(db: Database, table: str) -> AsyncIterator[dict[str, Any]]:
    """The rows of one export table as service_role, fetched 1,000 at a time through a cursor."""
    async with db.as_service() as conn:
        async for record in conn.cursor(EXPORTS[table], prefetch=1000):
            yield {key: _text(value) for key, value in record.items()}


async def export_table(db: Database, table: str, out: IO[str], fmt: Literal["csv", "jsonl"]) -> int:
    """Write one table to ``out`` as CSV (a header, then rows) or JSON lines; returns the rows written."""
    count = 0
    writer: csv.DictWriter[str] | None = None
    async for row in export_rows(db, table):
        if fmt == "jsonl":
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            if writer is None:
                writer = csv.DictWriter(out, fieldnames=list(row))
                writer.writeheader()
            writer.writerow(row)
        count += 1
    return count


async def export_all(
    db: Database, directory: Path | None, fmt: Literal["csv", "jsonl"], tables: list[str]
) -> dict[str, int]:
    """Export ``tables`` into ``directory`` (``<table>.csv`` / ``.jsonl``), or to stdout when None."""
    written: dict[str, int] = {}
    for table in tables:
        if directory is None:
            written[table] = await export_table(db, table, sys.stdout, fmt)
            continue
        directory.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (the CLI's one task: blocking is fine)
        with (directory / f"{table}.{fmt}").open("w", encoding="utf-8", newline="") as out:
            written[table] = await export_table(db, table, out, fmt)
    return written


async def import_file(
    db: Database,
    source: Source,
    path: Path,
    guild_id: str,
    *,
    keep: Literal["xp", "level"],
    dry_run: bool,
    console: Console,
) -> ImportSummary:
    """Import ``path`` with a progress bar on ``console``; returns the summary (see :func:`render`)."""
    rpc = PostgresRPC(db)
    size = path.stat().st_size  # noqa: ASYNC240 (the CLI's one task: blocking is fine)
    with (
        Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        ) as progress,
        path.open("rb") as stream,
    ):
        task = progress.add_task(f"{'checking' if dry_run else 'importing'} {path.name}", total=size)
        return await run_import(
            rpc.call,
            source,
            stream,
            guild_id,
            keep=keep,
            dry_run=dry_run,
            on_progress=lambda done: progress.update(task, completed=done),
        )


def render(summary: ImportSummary, console: Console, *, bad_rows_shown: int = 100) -> None:
    """Rich tables: the totals, the first members, level roles, and the bad rows (where and why)."""
    verb = "would be" if summary.dry_run else "were"
    totals = Table(title=f"{summary.source} import into server {summary.guild_id} (keep {summary.keep})")
    totals.add_column("what")
    totals.add_column("count", justify="right")
    totals.add_row("members read", f"{summary.read:,}")
    for status, count in sorted(summary.counts.items()):
        totals.add_row(f"members {status}", f"{count:,}")
    totals.add_row(f"profiles that {verb} made", f"{summary.new_profiles:,}")
    totals.add_row(f"XP that {verb} granted", f"{summary.xp_granted:,}")
    totals.add_row("bad rows", f"{len(summary.bad_rows):,}")
    console.print(totals)
    if summary.members:
        members = Table(title=f"first {len(summary.members)} member(s)")
        for column in ("Discord id", "status", "XP before", "level before", "XP granted", "level"):
            members.add_column(column, justify="left" if column in ("Discord id", "status") else "right")
        for m in summary.members:
            members.add_row(
                m.user_id,
                m.status,
                f"{m.xp_before:,}",
                str(m.level_before),
                f"{m.xp_granted:,}",
                str(m.level),
            )
        console.print(members)
    if summary.role_rewards and summary.role_rewards.rewards:
        roles = Table(title="level roles")
        for column in ("role id", "from level", "status"):
            roles.add_column(column)
        for r in summary.role_rewards.rewards:
            roles.add_row(r.role_id, str(r.min_level), r.status)
        console.print(roles)
    if summary.bad_rows:
        bad = Table(title="bad rows (not imported)")
        bad.add_column("where")
        bad.add_column("why")
        for row in summary.bad_rows[:bad_rows_shown]:
            bad.add_row(row.where, row.reason)
        if len(summary.bad_rows) > bad_rows_shown:
            bad.add_row("...", f"and {len(summary.bad_rows) - bad_rows_shown:,} more")
        console.print(bad)


__all__ = ["EXPORTS", "SOURCES", "export_all", "export_rows", "export_table", "import_file", "render"]
