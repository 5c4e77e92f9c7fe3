"""``xpbase load challenges FILE.yaml``: progress and a summary, idempotent, file problems with lines."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from tests.cli.conftest import said
from xpbase.cli import main

SAMPLE = Path(__file__).resolve().parents[2] / "supabase" / "rulepacks" / "challenges.yaml"


async def count(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("select count(*) from public.challenges"))
    finally:
        await conn.close()


def test_load_twice_reports_progress_then_nothing_new(
    cli_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first load saves six challenges with progress; the second finds them all unchanged."""
    assert main(["load", "challenges", str(SAMPLE)]) == 0
    out = said(capsys)
    assert "saved 6/6 challenge(s)" in out
    assert "6 new, 0 updated, 0 unchanged; 6 in the catalogue" in out
    assert main(["load", "challenges", str(SAMPLE)]) == 0
    assert "0 new, 0 updated, 6 unchanged" in said(capsys)
    assert asyncio.run(count(cli_env)) == 6


def test_bad_file_lists_problems_and_loads_nothing(
    cli_env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each problem is printed with its line; exit 2 and nothing written."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "challenges:\n  - slug: a\n    title: A\n    difficulty: easy\n    layer: cyber\n    xp: ten\n"
        "  - slug: B\n    title: B\n    difficulty: easy\n    layer: cyber\n    xp: 10\n",
        encoding="utf-8",
    )
    assert main(["load", "challenges", str(bad)]) == 2
    out = said(capsys)
    assert f"{bad}:6: challenge 'a': xp: Input should be a valid integer" in out
    assert f"{bad}:7: challenge 'B': slug: String should match pattern" in out
    assert "2 problem(s); nothing loaded" in out
    assert asyncio.run(count(cli_env)) == 0


def test_database_refusal_exits_1(cli_env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A prerequisite the database does not know is refused by SQL: exit 1 with its message."""
    bad = tmp_path / "orphan.yaml"
    bad.write_text(
        "challenges:\n  - slug: a\n    title: A\n    difficulty: easy\n    layer: cyber\n    xp: 10\n"
        "    prerequisites: [ghost]\n",
        encoding="utf-8",
    )
    assert main(["load", "challenges", str(bad)]) == 1
    assert "challenge a: unknown prerequisite ghost" in said(capsys)
