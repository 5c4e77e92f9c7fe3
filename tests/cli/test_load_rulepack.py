"""``xpbase load rulepack NAME``: the career pack loads whole with its counts, a reload adds nothing and keeps
a community's edits, an unknown name lists the packs, and a refused pack keeps nothing."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import asyncpg
import pytest

from tests.cli.conftest import said
from xpbase.cli import main
from xpbase.settings import REPO_ROOT, get_settings

CAREER_TYPES = {
    "career_event_attendance",
    "resource_submission",
    "linkedin_update",
    "resume_review_claim",
    "mock_interview",
    "informational_interview",
    "job_application",
}


async def fetch(url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


def career_rows(url: str) -> dict[str, tuple[str | None, int | None]]:
    """Career activity types: slug -> (category, base XP)."""
    rows = asyncio.run(fetch(url, "select slug, category, base_xp from public.activity_types order by slug"))
    return {r["slug"]: (r["category"], r["base_xp"]) for r in rows if r["slug"] in CAREER_TYPES}


def test_career_loads_whole_then_a_reload_adds_nothing_and_keeps_edits(
    cli_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Seven categorised types with their XP; an admin's edit survives the second load."""
    assert career_rows(cli_env) == {}
    assert main(["load", "rulepack", "career"]) == 0
    out = said(capsys)
    assert "activity_types:" in out and "(+7)" in out and "loaded rule pack career" in out
    rows = career_rows(cli_env)
    assert set(rows) == CAREER_TYPES and all(category for category, _ in rows.values())
    assert rows["mock_interview"] == ("career_development", 25)
    asyncio.run(fetch(cli_env, "update public.activity_types set base_xp = 40 where slug = 'mock_interview'"))
    assert main(["load", "rulepack", "career"]) == 0
    assert "0 row(s) added (it was loaded already" in said(capsys)
    assert career_rows(cli_env)["mock_interview"] == ("career_development", 40)


def test_unknown_pack_lists_the_packs_and_touches_nothing(
    cli_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A name with no file (or a path) is exit 2 with the packs named."""
    for name in ("carrer", "../sql/00_helpers"):
        assert main(["load", "rulepack", name]) == 2
        assert "the packs are career, stackexchange" in said(capsys)
    assert career_rows(cli_env) == {}


def test_a_refused_pack_keeps_nothing(
    cli_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The career pack with a bad last statement: exit 1, and not one of its rows stays."""
    supabase = tmp_path / "supabase"
    (supabase / "rulepacks").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "supabase" / "rulepacks" / "career.sql", supabase / "rulepacks" / "broken.sql")
    with (supabase / "rulepacks" / "broken.sql").open("a", encoding="utf-8") as f:
        f.write("\ninsert into public.activity_types (slug) values ('Not A Slug');\n")
    monkeypatch.setenv("XPBASE_SUPABASE_DIR", str(supabase))
    get_settings.cache_clear()
    assert main(["load", "rulepack", "broken"]) == 1
    assert "refused rule pack broken; nothing of it was kept" in said(capsys)
    assert career_rows(cli_env) == {}
