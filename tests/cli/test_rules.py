"""``xpbase rules diff|apply FILE``: a YAML change previewed (nothing kept), applied with a reason, and the
files and changes that are refused (exit 2 before the database, exit 1 when the database refuses; nothing
kept)."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from rich.console import Console

from tests.cli.conftest import said
from xpbase.cli import main
from xpbase.db import Database
from xpbase.models.rules import RuleChangeProgress
from xpbase.rules import RuleChange, run


async def _sql(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


def sql(url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    return asyncio.run(_sql(url, query, *args))


def seed(url: str) -> None:
    """Dee: two messages 30 s apart five days ago: 15 + 0 (the 60 s cooldown) = 15 XP."""
    t = (datetime.now(UTC) - timedelta(days=5)).replace(hour=12, minute=0, second=0, microsecond=0)
    sql(
        url,
        "with p as (select public.ensure_profile('discord', 'dee', 'Dee') as id)"
        " select public.award_xp(p.id, 'message', 'dee-' || s, null,"
        "                        $1::timestamptz + make_interval(secs => s))"
        " from p, unnest(array[0, 30]) s",
        t,
    )


def state(url: str) -> tuple[Any, ...]:
    rows = sql(
        url,
        "select (select base_xp from public.activity_types where slug = 'message'),"
        " (select cooldown_seconds from public.activity_types where slug = 'message'),"
        " (select xp from public.profiles where display_name = 'Dee'),"
        " (select count(*) from public.xp_ledger), (select count(*) from public.rule_changes)",
    )
    return tuple(rows[0])


CHANGE = "activities:\n  message: {base_xp: 20, cooldown_seconds: 10}\n"


def test_diff_previews_and_keeps_nothing(
    cli_env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Under 20 XP and a 10 s cooldown Dee's messages earn 40: the diff says so and keeps nothing."""
    seed(cli_env)
    before = state(cli_env)
    change = tmp_path / "change.yaml"
    change.write_text(CHANGE, encoding="utf-8")
    assert main(["rules", "diff", str(change)]) == 0
    out = said(capsys)
    assert "2 award(s) decided differently; 1 member(s) would move: 1 gain XP" in out
    assert "15 → 40 (+25)" in out and "Dee" in out
    assert state(cli_env) == before
    assert main(["rules", "diff", str(change), "--json"]) == 0
    outcome = json.loads(capsys.readouterr().out)
    assert (outcome["dry_run"], outcome["xp_delta"], outcome["members"][0]["xp"]) == (True, 25, 40)


def test_apply_writes_the_change_with_its_reason(
    cli_env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(cli_env)
    change = tmp_path / "change.json"
    change.write_text(json.dumps({"activities": {"message": {"base_xp": 20, "cooldown_seconds": 10}}}))
    assert main(["rules", "apply", str(change), "--reason", "messages count more", "--yes"]) == 0
    out = said(capsys)
    assert "applied as rule change" in out and "15 → 40 (+25)" in out
    base_xp, cooldown, xp, _, changes = state(cli_env)
    assert (base_xp, cooldown, xp, changes) == (20, 10, 40, 1)
    reasons = sql(cli_env, "select distinct reason from public.xp_ledger where request ->> 'fn' = 'rules'")
    assert [r["reason"] for r in reasons] == ["messages count more"]


def test_apply_asks_first_and_a_no_keeps_nothing(
    cli_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --yes: on a terminal the preview is shown and "no" keeps nothing; else it refuses."""
    seed(cli_env)
    before = state(cli_env)
    change = tmp_path / "change.yaml"
    change.write_text(CHANGE, encoding="utf-8")
    assert main(["rules", "apply", str(change), "--reason", "r"]) == 2
    assert "pass --yes" in said(capsys)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("rich.prompt.Confirm.ask", lambda *a, **k: False)
    assert main(["rules", "apply", str(change), "--reason", "r"]) == 1
    out = said(capsys)
    assert "15 → 40 (+25)" in out and "not applied" in out
    assert state(cli_env) == before


@pytest.mark.parametrize(
    ("text", "suffix", "expected"),
    [
        ("activities: [1, 2", ".yaml", "is not valid YAML"),
        ("{", ".json", "is not valid JSON"),
        ("- 1\n", ".yaml", "must hold a mapping of rule sections"),
        ("badges: {}\n", ".yaml", "badges: Extra inputs are not permitted"),
        ("activities:\n  message: {base_xp: lots}\n", ".yaml", "activities.message.base_xp"),
        (
            "activities:\n  Message: {base_xp: 1}\n",
            ".yaml",
            "activities.Message.[key]: String should match pattern '^[a-z]",
        ),
        ("level_curve: []\n", ".yaml", "level_curve: List should have at least 1 item"),
    ],
)
def test_a_bad_file_is_exit_2_before_the_database(
    cli_env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, suffix: str, expected: str
) -> None:
    before = state(cli_env)
    change = tmp_path / f"change{suffix}"
    change.write_text(text, encoding="utf-8")
    assert main(["rules", "diff", str(change)]) == 2
    assert expected in said(capsys)
    assert main(["rules", "diff", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read" in said(capsys)
    assert state(cli_env) == before


def test_a_change_the_database_refuses_is_exit_1_and_keeps_nothing(
    cli_env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown activity and a curve without level 1 pass the file's schema; the SQL refuses them."""
    seed(cli_env)
    before = state(cli_env)
    for text, code in (
        ("activities:\n  nope: {base_xp: 1}\n", "XPACT"),
        ("level_curve:\n  - {level: 2, xp_required: 5}\n", "XPBAD"),
    ):
        change = tmp_path / "change.yaml"
        change.write_text(text, encoding="utf-8")
        assert main(["rules", "apply", str(change), "--reason", "r", "--yes"]) == 1
        assert f"refused the change ({code}), nothing kept" in said(capsys)
    assert state(cli_env) == before


def test_diff_and_apply_report_their_progress_per_step(cli_env: str) -> None:
    """The database's progress NOTICEs reach the caller: Dee's two ledger rows decided again, then her
    corrections played (diff) and written (apply), each step ending at its total."""
    seed(cli_env)
    change = RuleChange.model_validate({"activities": {"message": {"base_xp": 20, "cooldown_seconds": 10}}})
    reports: dict[str, list[RuleChangeProgress]] = {"diff": [], "apply": []}

    async def go() -> None:
        db = await Database.connect(cli_env)
        try:
            quiet = Console(file=io.StringIO())
            await run(db, change, reason=None, max_members=10, console=quiet, progress=reports["diff"].append)
            await run(
                db, change, reason="progress", max_members=10, console=quiet, progress=reports["apply"].append
            )
        finally:
            await db.close()

    asyncio.run(go())
    expected = [
        RuleChangeProgress(step="walk", done=2, total=2),
        RuleChangeProgress(step="corrections", done=1, total=1),
    ]
    assert reports == {"diff": expected, "apply": expected}
    assert state(cli_env)[2] == 40
