"""procrastinate's schema as an xpbase migration (xpbase/queue_schema.py)."""

from __future__ import annotations

from xpbase.queue_schema import migration_sql, qualify
from xpbase.settings import REPO_ROOT

MIGRATION = REPO_ROOT / "supabase" / "migrations" / "20261130200000_procrastinate.sql"


def test_the_migration_is_the_installed_procrastinates_schema() -> None:
    """The migration is what the installed procrastinate generates (an upgrade needs a new migration)."""
    assert MIGRATION.read_text(encoding="utf-8") == migration_sql()


def test_qualify_leaves_strings_and_index_names_alone() -> None:
    """Names get the schema; string literals, longer identifiers and qualified names do not change."""
    sql = (
        "CREATE TABLE procrastinate_jobs (id int);\n"
        "CREATE INDEX procrastinate_jobs_id_idx ON procrastinate_jobs (id);\n"
        "SELECT pg_notify('procrastinate_jobs', 'x'), other.procrastinate_jobs FROM procrastinate_jobs;"
    )
    out, names = qualify(sql, "q")
    assert names == ["procrastinate_jobs"]
    assert out == (
        "CREATE TABLE q.procrastinate_jobs (id int);\n"
        "CREATE INDEX procrastinate_jobs_id_idx ON q.procrastinate_jobs (id);\n"
        "SELECT pg_notify('procrastinate_jobs', 'x'), other.procrastinate_jobs FROM q.procrastinate_jobs;"
    )
