"""``xpbase export`` then ``xpbase import csv`` into an empty database: every member's XP total and layer
totals come back (xpbase/transfer.py, xpbase/importers.py)."""

from __future__ import annotations

import datetime as dt
import io
import json

from pytest_postgresql.executors.noop import NoopExecutor

from tests.conftest import cloned_database
from tests.helpers import award
from xpbase.db import Database
from xpbase.importers import run_import
from xpbase.rpc import PostgresRPC
from xpbase.transfer import export_table

TOTALS = """
select i.subject, p.xp, coalesce((select jsonb_object_agg(pl.layer_slug, pl.xp) from public.profile_layers pl
                                   where pl.profile_id = p.id and pl.xp > 0), '{}') as layers
  from public.profiles p join public.identities i on i.profile_id = p.id and i.provider = 'discord'
 order by i.subject
"""


async def _totals(db: Database) -> list[tuple[str, int, dict[str, int]]]:
    async with db.as_service() as conn:
        rows = await conn.fetch(TOTALS)
    return [
        (r["subject"], r["xp"], json.loads(r["layers"]) if isinstance(r["layers"], str) else r["layers"])
        for r in rows
    ]


async def test_export_then_import_into_an_empty_database_reproduces_totals(
    db: Database, xpbase_template: NoopExecutor
) -> None:
    """Profiles with XP in both layers (and one with none) come back with the same totals per layer."""
    for n, (reality, messages) in enumerate([(700, 3), (0, 2), (120, 0), (0, 0)]):
        pid = await db.rpc("ensure_profile", provider="discord", subject=str(1000 + n), display_name=f"M{n}")
        if reality:
            await award(db, pid, "challenge_completed", f"r{n}", amount=reality)
        for i in range(messages):
            await award(
                db, pid, "message", f"m{n}-{i}", occurred_at=dt.datetime(2026, 1, i + 1, tzinfo=dt.UTC)
            )
    before = await _totals(db)
    assert sum(xp for _, xp, _ in before) > 0
    out = io.StringIO()
    assert await export_table(db, "profiles", out, "csv") == 4
    exported = io.BytesIO(out.getvalue().encode())

    with cloned_database(xpbase_template, "xpbase_import") as url:
        empty = await Database.connect(url, min_size=1, max_size=2)
        try:
            summary = await run_import(PostgresRPC(empty).call, "csv", exported, "1", keep="xp")
            assert summary.bad_rows == []
            assert await _totals(empty) == before
        finally:
            await empty.close()


async def test_ledger_export_streams_json_lines(db: Database) -> None:
    """The ledger comes out as one JSON object a line."""
    pid = await db.rpc("ensure_profile", provider="discord", subject="7", display_name="Ada")
    await award(db, pid, "challenge_completed", "x", amount=100)
    out = io.StringIO()
    assert await export_table(db, "ledger", out, "jsonl") == 1
    row = json.loads(out.getvalue())
    assert (row["amount"], row["activity_slug"], row["idempotency_key"]) == (100, "challenge_completed", "x")
