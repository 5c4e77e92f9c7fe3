"""xpbase demo: a reproducible community through the award path, removal without touching the ledger, and the
development-only commands (token, demo) refused in production."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from xpbase import demo
from xpbase.db import Database

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def test_the_same_seed_gives_the_same_community() -> None:
    """plan() depends on seed, time and days only: the same community again; another seed differs."""
    assert demo.plan(5, NOW, 7) == demo.plan(5, NOW, 7)
    assert [m["name"] for m in demo.plan(5, NOW, 7)] != [m["name"] for m in demo.plan(6, NOW, 7)]


async def test_load_remove_and_load_again(db: Database) -> None:
    """Load fills the board; a second load is refused; remove resets and hides the members with ledger rows
    kept; a new load makes new members."""
    now = datetime.now(UTC)  # both loads plan from one instant, even across a midnight
    report = await demo.load(db, 3, now, days=5)
    assert report.members == demo.MEMBERS and report.xp > 0 and report.check_ins > 0
    async with db.as_anon() as conn:
        listed = await conn.fetchval(
            "select count(*) from public.leaderboard('all_time', null, null, 100, 1)"
        )
    assert listed == demo.MEMBERS
    with pytest.raises(demo.DemoError):
        await demo.load(db, 3, now, days=5)
    async with db.pool.acquire() as conn:
        ledger_before = await conn.fetchval("select count(*) from public.xp_ledger")
    assert await demo.remove(db) == demo.MEMBERS
    async with db.pool.acquire() as conn:
        assert await conn.fetchval("select count(*) from public.xp_ledger") > ledger_before  # reversals added
        assert (
            await conn.fetchval("select count(*) from public.xp_ledger where reason = 'xpbase demo --remove'")
            > 0
        )
        assert (
            await conn.fetchval(
                "select count(*) from public.profiles where display_name = 'Removed demo member' and xp = 0"
                " and not leaderboard_visible"
            )
            == demo.MEMBERS
        )
    async with db.as_anon() as conn:
        assert (
            await conn.fetchval("select count(*) from public.leaderboard('all_time', null, null, 100, 1)")
            == 0
        )
    with pytest.raises(demo.DemoError):
        await demo.remove(db)
    again = await demo.load(db, 3, now, days=5)
    # The same plan again: the same awards, credit and check-ins. The boards may differ: the first load closed
    # the seasons its days reached (season-end bonuses), and a closed season gives no second bonus.
    assert (again.awards, again.xp, again.check_ins) == (report.awards, report.xp, report.check_ins)
    assert {name for name, _, _ in again.top} <= {m["name"] for m in demo.plan(3, now, 5)}
    assert {pid for _, pid, _ in again.top}.isdisjoint({pid for _, pid, _ in report.top})


@pytest.mark.parametrize("command", [["token", "Ada"], ["demo"]])
def test_development_commands_are_refused_in_production(tmp_path: Path, command: list[str]) -> None:
    """XPBASE_ENV=production: token and demo exit 2 with one line, before touching a database."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        {
            "XPBASE_ENV": "production",
            "XPBASE_DATA_DIR": str(tmp_path),
            "DATABASE_URL": "postgresql://x@127.0.0.1:1/x",
        }
    )
    result = subprocess.run(
        [sys.executable, "-m", "xpbase.cli", *command], env=env, capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "XPBASE_ENV is 'production'" in result.stderr
