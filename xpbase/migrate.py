"""Apply the database schema: compat layer, migrations, functions.sql, seed.sql.

Order, as DESIGN.md fixes it:

1. ``supabase/compat/auth.sql`` when the ``auth`` schema is missing (plain
   Postgres; never on Supabase, which has its own).
2. Every ``supabase/migrations/YYYYMMDDHHmmss_name.sql`` not yet recorded in
   ``supabase_migrations.schema_migrations`` (the Supabase CLI's table), in file
   order, each in its own transaction together with its record.
3. ``supabase/functions.sql`` (create-or-replace, re-applied every time).
4. ``supabase/seed.sql`` (``on conflict do nothing``, re-applied every time).

A session advisory lock keeps two migrators from interleaving. Running it
twice changes nothing: the second run applies no migration, and functions and
seed are written to be re-runnable.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

MIGRATION_NAME = re.compile(r"^(\d{14})_([a-z0-9_]+)\.sql$")
LOCK_KEY = 0x7870_6261_7365  # "xpbase"


class MigrationError(RuntimeError):
    """A migration file is misnamed, or a statement in one failed (the message names the file)."""


@dataclass
class Migration:
    """One file in ``supabase/migrations``."""

    version: str
    name: str
    path: Path


@dataclass
class MigrationReport:
    """What one ``migrate`` run did."""

    compat_applied: bool = False
    applied: list[Migration] = field(default_factory=list)
    already_applied: int = 0
    functions_applied: bool = False
    seed_applied: bool = False

    @property
    def schema_version(self) -> str | None:
        """The newest migration version applied by this run (None when it applied none)."""
        return self.applied[-1].version if self.applied else None


def list_migrations(supabase_dir: Path) -> list[Migration]:
    """The migration files in version order. Raises MigrationError for a misnamed ``.sql`` file."""
    found = []
    for path in sorted((supabase_dir / "migrations").glob("*.sql")):
        match = MIGRATION_NAME.match(path.name)
        if not match:
            raise MigrationError(
                f"{path.name}: migration files are named YYYYMMDDHHmmss_short_description.sql"
            )
        found.append(Migration(match.group(1), match.group(2), path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a version")
    return found


async def applied_versions(conn: asyncpg.Connection) -> set[str]:
    """Versions recorded in ``supabase_migrations.schema_migrations`` (empty if the table is missing)."""
    exists = await conn.fetchval("select to_regclass('supabase_migrations.schema_migrations') is not null")
    if not exists:
        return set()
    rows = await conn.fetch("select version from supabase_migrations.schema_migrations")
    return {r["version"] for r in rows}


async def _run_file(conn: asyncpg.Connection, path: Path) -> str:
    """Execute one SQL file; returns its text. MigrationError (naming the file) when it fails."""
    sql = await asyncio.to_thread(path.read_text, encoding="utf-8")
    try:
        await conn.execute(sql)
    except asyncpg.PostgresError as exc:
        raise MigrationError(f"{path.name}: {type(exc).__name__}: {exc}") from exc
    return sql


async def migrate(
    url_or_conn: str | asyncpg.Connection,
    supabase_dir: Path,
    *,
    progress: Callable[[str], None] | None = None,
) -> MigrationReport:
    """Bring the database at ``url_or_conn`` up to date; returns a MigrationReport.

    ``progress`` receives one line per step. A failing file rolls back its own
    transaction and raises MigrationError; files applied before it stay applied.
    """
    say = progress or (lambda _line: None)
    migrations = list_migrations(supabase_dir)
    conn = await asyncpg.connect(url_or_conn) if isinstance(url_or_conn, str) else url_or_conn
    report = MigrationReport()
    try:
        await conn.execute("select pg_advisory_lock($1)", LOCK_KEY)
        try:
            if not await conn.fetchval("select exists (select 1 from pg_namespace where nspname = 'auth')"):
                async with conn.transaction():
                    await _run_file(conn, supabase_dir / "compat" / "auth.sql")
                report.compat_applied = True
                say("applied compat/auth.sql (Supabase roles and auth schema for plain Postgres)")

            await conn.execute(
                """
                create schema if not exists supabase_migrations;
                create table if not exists supabase_migrations.schema_migrations (
                  version text primary key, statements text[], name text
                );
                """
            )
            done = await applied_versions(conn)
            for migration in migrations:
                if migration.version in done:
                    report.already_applied += 1
                    continue
                async with conn.transaction():
                    sql = await _run_file(conn, migration.path)
                    await conn.execute(
                        "insert into supabase_migrations.schema_migrations (version, statements, name)"
                        " values ($1, $2, $3)",
                        migration.version,
                        [sql],
                        migration.name,
                    )
                report.applied.append(migration)
                say(f"applied migration {migration.path.name}")

            for attr, filename in (("functions_applied", "functions.sql"), ("seed_applied", "seed.sql")):
                path = supabase_dir / filename
                if path.exists():
                    async with conn.transaction():
                        await _run_file(conn, path)
                    setattr(report, attr, True)
                    say(f"applied {filename}")
        finally:
            await conn.execute("select pg_advisory_unlock($1)", LOCK_KEY)
    finally:
        if isinstance(url_or_conn, str):
            await conn.close()
    return report
