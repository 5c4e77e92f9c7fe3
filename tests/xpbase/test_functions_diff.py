"""xpbase/functions_diff.py and `xpbase migration new|check`: an edit in supabase/sql/ becomes a migration."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from pytest_postgresql.executors.noop import NoopExecutor
from pytest_postgresql.janitor import DatabaseJanitor

from tests.conftest import socket_url
from tests.sql.test_catalog import pg_dump
from xpbase import functions_diff
from xpbase.embedded import pg_bin
from xpbase.migrate import migrate
from xpbase.settings import REPO_ROOT

TIER_BODY = "   order by t.min_level desc\n   limit 1\n$$;\ncomment on function public.tier_for_level"
NOW = datetime(2031, 12, 1, 9, 30, tzinfo=UTC)  # after every migration in the repository


@pytest.fixture
def supabase_copy(tmp_path: Path) -> Path:
    """A copy of supabase/ to edit."""
    target = tmp_path / "supabase"
    shutil.copytree(REPO_ROOT / "supabase", target)
    return target


@pytest.fixture
def empty_url(pg_server: NoopExecutor) -> Iterator[str]:
    """A new, empty database on the test server, dropped afterwards."""
    name = f"diff_{uuid.uuid4().hex[:12]}"
    with DatabaseJanitor(
        user=pg_server.user, host=pg_server.host, port=pg_server.port, dbname=name, password=None
    ):
        yield socket_url(pg_server.host, pg_server.port, name, pg_server.user)


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))


def _cli(supabase_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["XPBASE_SUPABASE_DIR"] = str(supabase_dir)
    return subprocess.run(
        [sys.executable, "-m", "xpbase.cli", "migration", *args], env=env, capture_output=True, text=True
    )


def test_repository_has_no_edit_without_a_migration() -> None:
    """`xpbase migration check` passes on the repository (exit 0)."""
    result = _cli(REPO_ROOT / "supabase", "check")
    assert result.returncode == 0, result.stderr


async def test_an_edited_function_without_migration_is_caught(supabase_copy: Path, empty_url: str) -> None:
    """An edited body is reported by `migration check` (exit 1), and the database comparison sees it too."""
    _edit(supabase_copy / "sql" / "20_levels.sql", TIER_BODY, TIER_BODY.replace("desc", "asc"))
    result = _cli(supabase_copy, "check")
    assert result.returncode == 1
    assert "function public.tier_for_level(int4)" in result.stderr
    assert functions_diff.diff(supabase_copy).summary() == ["function public.tier_for_level(int4)"]
    # What the database says: migrations alone, then the feature files on top, differ.
    await migrate(empty_url, supabase_copy)
    before = pg_dump(empty_url, "--schema-only")
    await asyncio.to_thread(
        subprocess.run,
        [
            str(pg_bin("psql")),
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-f",
            str(supabase_copy / "functions.sql"),
            "--dbname",
            empty_url,
        ],
        check=True,
        capture_output=True,
    )
    assert before != pg_dump(empty_url, "--schema-only")


async def test_migration_new_writes_the_changed_function_and_it_deploys(
    supabase_copy: Path, empty_url: str
) -> None:
    """The new migration holds the edited function with its comment and grants, and nothing else."""
    _edit(supabase_copy / "sql" / "20_levels.sql", TIER_BODY, TIER_BODY.replace("desc", "asc"))
    path, _ = functions_diff.new_migration(supabase_copy, "tier-rule", now=NOW)
    assert path is not None and path.name == "20311201093000_tier-rule.sql"
    text = path.read_text()
    assert text.startswith("-- tier-rule\n")
    assert "order by t.min_level asc" in text
    assert "grant execute on function public.tier_for_level(integer) to anon" in text
    assert text.count("create or replace function") == 1
    assert functions_diff.diff(supabase_copy).empty
    await migrate(empty_url, supabase_copy)
    conn = await asyncpg.connect(empty_url)
    try:
        assert await conn.fetchval("select public.tier_for_level(60)") == "basic"
    finally:
        await conn.close()


def test_comments_and_whitespace_are_not_changes(supabase_copy: Path) -> None:
    """Reformatting outside string literals and editing comments leave nothing to migrate."""
    _edit(
        supabase_copy / "sql" / "20_levels.sql",
        "returns text\nlanguage sql",
        "-- the slug\nRETURNS text\n  language SQL",
    )
    assert functions_diff.diff(supabase_copy).empty
    assert functions_diff.new_migration(supabase_copy, "nothing", now=NOW)[0] is None


async def test_a_removed_function_is_dropped(supabase_copy: Path, empty_url: str) -> None:
    """A function the feature files no longer define gets `drop function if exists` in the new migration."""
    levels = supabase_copy / "sql" / "20_levels.sql"
    text = levels.read_text()
    start = text.index("create or replace function public.layer_status_for")
    end = text.index("grant execute on function public.layer_status_for(text, bigint) to anon")
    end = text.index("\n", end) + 1
    levels.write_text(text[:start] + text[end:])
    path, changes = functions_diff.new_migration(supabase_copy, "drop_layer_status_for", now=NOW)
    assert changes.dropped == [("function", "public.layer_status_for(text, int8)")]
    assert (
        path is not None
        and "drop function if exists public.layer_status_for(text, int8);" in path.read_text()
    )
    await migrate(empty_url, supabase_copy)
    conn = await asyncpg.connect(empty_url)
    try:
        assert await conn.fetchval("select to_regprocedure('public.layer_status_for(text, bigint)')") is None
    finally:
        await conn.close()


def test_the_timestamp_stays_after_the_newest_migration(supabase_copy: Path) -> None:
    """A clock behind the newest migration still yields a later version, so file order is apply order."""
    _edit(supabase_copy / "sql" / "20_levels.sql", TIER_BODY, TIER_BODY.replace("desc", "asc"))
    path, _ = functions_diff.new_migration(supabase_copy, "late", now=datetime(2020, 1, 1, tzinfo=UTC))
    assert path is not None
    newest = sorted(p.name for p in (supabase_copy / "migrations").glob("*.sql"))[-1]
    assert newest == path.name


@pytest.mark.parametrize("name", ["", "has space", "semi;colon", "ü", "x" * 101])
def test_unusable_names_are_refused(supabase_copy: Path, name: str) -> None:
    """Names are letters, digits, '_' and '-' (what the CLI keeps in a file name), at most 100."""
    with pytest.raises(functions_diff.FunctionsDiffError):
        functions_diff.new_migration(supabase_copy, name, now=NOW)


def test_functions_sql_with_other_statements_is_refused(supabase_copy: Path) -> None:
    """functions.sql is only the list: a statement in it is an error that names the line."""
    index = supabase_copy / "functions.sql"
    index.write_text(index.read_text() + "select 1;\n")
    with pytest.raises(functions_diff.FunctionsDiffError, match=r"functions\.sql:"):
        functions_diff.feature_files(supabase_copy)
