"""The feature files in supabase/sql/: listed by functions.sql, told whole, and all in the migrations.

The migrations are what a database gets (`xpbase migrate`, `supabase db push`);
the feature files are what a developer edits. These tests fail when the two
disagree: an edit without `xpbase migration new`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.sql.test_catalog import assert_same_dump, pg_dump
from xpbase import functions_diff
from xpbase.embedded import pg_bin
from xpbase.settings import REPO_ROOT

SUPABASE = REPO_ROOT / "supabase"
FEATURES = sorted((SUPABASE / "sql").glob("*.sql"))


def test_functions_sql_lists_every_feature_file_in_order() -> None:
    """functions.sql names each file of supabase/sql/ once, in file-name (apply) order, and nothing else."""
    listed = functions_diff.feature_files(SUPABASE)
    assert len(FEATURES) > 10
    assert listed == [p.resolve() for p in FEATURES]


@pytest.mark.parametrize("path", FEATURES, ids=lambda p: p.name)
def test_feature_file_is_told_whole(path: Path) -> None:
    """A feature file opens with what it is and which tables it owns, has a test file, and stays readable."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0].startswith("-- ") and len(lines[0]) > 20, "open with a comment that says what this is"
    assert any(line.startswith("-- Tables: ") for line in lines[:12]), "name the tables the feature owns"
    stem = path.stem.split("_", 1)[1]
    assert (REPO_ROOT / "tests" / "sql" / f"test_{stem}.py").exists(), f"tests/sql/test_{stem}.py mirrors it"
    assert len(lines) <= 720, f"{path.name} has {len(lines)} lines: split the feature"


def test_every_definition_is_in_a_migration() -> None:
    """`xpbase migration check`'s comparison: nothing edited in supabase/sql/ lacks its migration."""
    changes = functions_diff.diff(SUPABASE)
    assert changes.summary() == [], "run `xpbase migration new NAME`"


def test_feature_files_change_nothing_on_a_migrated_database(database_url: str) -> None:
    """psql -f functions.sql on a database the migrations made leaves its catalog exactly as it was.

    This is the database's own word on drift: whatever the parser-based check
    cannot see (a grant deleted from a feature file) shows here.
    """
    before = pg_dump(database_url, "--schema-only")
    subprocess.run(
        [
            str(pg_bin("psql")),
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-f",
            str(SUPABASE / "functions.sql"),
            "--dbname",
            database_url,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    assert_same_dump(before, pg_dump(database_url, "--schema-only"), "schema")
