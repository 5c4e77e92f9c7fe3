"""xpbase/migrate.py: migrations as the Supabase CLI names them, and a seed applied once per database."""

from __future__ import annotations

import hashlib
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from pytest_postgresql.executors.noop import NoopExecutor
from pytest_postgresql.janitor import DatabaseJanitor

from tests.conftest import socket_url
from xpbase.migrate import SEED_PATH, MigrationError, list_migrations, migrate
from xpbase.settings import REPO_ROOT


@pytest.fixture
def empty_url(pg_server: NoopExecutor) -> Iterator[str]:
    """A new, empty database on the test server (no template), dropped afterwards."""
    name = f"empty_{uuid.uuid4().hex[:12]}"
    janitor = DatabaseJanitor(
        user=pg_server.user, host=pg_server.host, port=pg_server.port, dbname=name, password=None
    )
    with janitor:
        yield socket_url(pg_server.host, pg_server.port, name, pg_server.user)


@pytest.fixture
def supabase_copy(tmp_path: Path) -> Path:
    """A copy of supabase/ to change without touching the repository."""
    target = tmp_path / "supabase"
    shutil.copytree(REPO_ROOT / "supabase", target)
    return target


async def _fetch(url: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(query)
    finally:
        await conn.close()


async def test_seed_is_applied_once_and_edits_survive_restarts(empty_url: str) -> None:
    """A community's shorter curve and a deleted unlock stay through two more migrates (restarts)."""
    first = await migrate(empty_url, REPO_ROOT / "supabase")
    assert first.seed_applied
    conn = await asyncpg.connect(empty_url)
    try:
        await conn.execute(
            "delete from public.tier_unlocks where slug = (select min(slug) from public.tier_unlocks)"
        )
        await conn.execute("update public.tiers set max_level = least(max_level, 50) where min_level <= 50")
        await conn.execute("delete from public.tiers where min_level > 50")
        await conn.execute("delete from public.level_curve where level > 50")
        unlocks = await conn.fetchval("select count(*) from public.tier_unlocks")
    finally:
        await conn.close()
    for _ in range(2):
        again = await migrate(empty_url, REPO_ROOT / "supabase")
        assert (again.seed_applied, again.seed_changed, again.applied) == (False, False, [])
    rows = await _fetch(
        empty_url,
        "select (select max(level) from public.level_curve) as top,"
        " (select count(*) from public.tier_unlocks) as unlocks",
    )
    assert (rows[0]["top"], rows[0]["unlocks"]) == (50, unlocks)


async def test_seed_is_recorded_as_the_supabase_cli_records_it(empty_url: str) -> None:
    """supabase_migrations.seed_files holds the seed's path and the sha256 of its bytes."""
    await migrate(empty_url, REPO_ROOT / "supabase")
    rows = await _fetch(empty_url, "select path, hash from supabase_migrations.seed_files")
    digest = hashlib.sha256((REPO_ROOT / "supabase" / "seed.sql").read_bytes()).hexdigest()
    assert [(r["path"], r["hash"]) for r in rows] == [(SEED_PATH, digest)]


async def test_changed_seed_updates_the_hash_and_is_not_applied_again(
    empty_url: str, supabase_copy: Path
) -> None:
    """An edited seed.sql is not re-run (deleted rows stay deleted); its new hash is recorded."""
    await migrate(empty_url, supabase_copy)
    conn = await asyncpg.connect(empty_url)
    try:
        await conn.execute("delete from public.tier_unlocks")
    finally:
        await conn.close()
    seed = supabase_copy / "seed.sql"
    seed.write_text(seed.read_text() + "\n-- a later version of the defaults\n")
    report = await migrate(empty_url, supabase_copy)
    assert (report.seed_applied, report.seed_changed) == (False, True)
    rows = await _fetch(
        empty_url,
        "select (select hash from supabase_migrations.seed_files) as hash,"
        " (select count(*) from public.tier_unlocks) as unlocks",
    )
    assert rows[0]["hash"] == hashlib.sha256(seed.read_bytes()).hexdigest()
    assert rows[0]["unlocks"] == 0


async def test_migration_names_the_supabase_cli_writes_apply(empty_url: str, supabase_copy: Path) -> None:
    """`supabase migration new add-Badges` writes <version>_add-Badges.sql (dated here after every migration
    in the repository): it applies and is recorded."""
    (supabase_copy / "migrations" / "20311201131105_add-Badges.sql").write_text(
        "create table public.badge_probes (id bigint primary key);\n"
        "alter table public.badge_probes enable row level security;\n"
    )
    report = await migrate(empty_url, supabase_copy)
    assert report.applied[-1].version == "20311201131105"
    rows = await _fetch(
        empty_url, "select name from supabase_migrations.schema_migrations where version = '20311201131105'"
    )
    assert [r["name"] for r in rows] == ["add-Badges"]


@pytest.mark.parametrize("name", ["add_badges.sql", "v2_add.sql", "x_1.sql"])
def test_misnamed_migration_files_are_refused(supabase_copy: Path, name: str) -> None:
    """A .sql file without the CLI's <digits>_<name>.sql form is an error naming the file, not skipped."""
    (supabase_copy / "migrations" / name).write_text("select 1;\n")
    with pytest.raises(MigrationError, match=name.replace(".", r"\.")):
        list_migrations(supabase_copy)
