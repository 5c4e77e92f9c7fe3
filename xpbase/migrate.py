"""Apply the database schema the way ``supabase db push --include-seed`` does.

Order:

1. ``supabase/compat/auth.sql`` when ``auth.identities`` is missing (plain
   Postgres, also one that compat set up before it created the auth tables;
   never on Supabase, which has its own).
2. Every ``supabase/migrations/<version>_<name>.sql`` not yet recorded in
   ``supabase_migrations.schema_migrations`` (the Supabase CLI's table), in file
   name order, each in its own transaction together with its record. Names are
   what the CLI accepts: digits, ``_``, then anything (``supabase migration new
   add-Badges`` writes ``20261130131105_add-Badges.sql``).
3. ``supabase/seed.sql`` once per database, recorded in
   ``supabase_migrations.seed_files`` (path, sha256 hex) as the CLI records it.
   A seed whose hash changed is not applied again (the CLI only updates the
   hash, and so does this): a community's edits to the level curve, tiers or
   unlocks survive every later start, and new default rows that a later
   version needs arrive in a migration.

The functions and triggers reach the database through migrations too (see
xpbase/functions_diff.py: ``xpbase migration new`` writes them from the
feature files), so this and the Supabase CLI make the same catalog.

A session advisory lock keeps two migrators from interleaving. Running it
twice changes nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

# The Supabase CLI's pattern (pkg/migration: `^([0-9]+)_(.*)\.sql$`).
MIGRATION_NAME = re.compile(r"^([0-9]+)_(.*)\.sql$")
LOCK_KEY = 0x7870_6261_7365  # "xpbase"
# How the Supabase CLI names the seed in supabase_migrations.seed_files: the path from the project root.
SEED_PATH = "supabase/seed.sql"


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
    seed_applied: bool = False
    seed_changed: bool = False

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
                f"{path.name}: migration files are named <timestamp>_<name>.sql "
                "(YYYYMMDDHHmmss_short_description.sql; `supabase migration new NAME` writes them)"
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


async def _seed(
    conn: asyncpg.Connection, path: Path, report: MigrationReport, say: Callable[[str], None]
) -> None:
    """Apply ``seed.sql`` once per database, as ``supabase db push --include-seed`` does."""
    try:
        digest = hashlib.sha256(await asyncio.to_thread(path.read_bytes)).hexdigest()
    except FileNotFoundError:
        return
    async with conn.transaction():
        await conn.execute(
            "create table if not exists supabase_migrations.seed_files"
            " (path text primary key, hash text not null)"
        )
        recorded = await conn.fetchval(
            "select hash from supabase_migrations.seed_files where path = $1 for update", SEED_PATH
        )
        if recorded is None:
            await _run_file(conn, path)
            await conn.execute(
                "insert into supabase_migrations.seed_files (path, hash) values ($1, $2)", SEED_PATH, digest
            )
            report.seed_applied = True
            say("applied seed.sql (once per database; later edits to the seeded rows are kept)")
        elif recorded != digest:
            await conn.execute(
                "update supabase_migrations.seed_files set hash = $2 where path = $1", SEED_PATH, digest
            )
            report.seed_changed = True
            say(
                "seed.sql changed since this database was seeded: not applied again (the Supabase CLI does "
                "the same); rows a new version needs come in a migration"
            )


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
            # Supabase has auth.identities; a plain Postgres migrated before compat created it gets it now
            # (the script is idempotent).
            if await conn.fetchval("select to_regclass('auth.identities') is null"):
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

            await _seed(conn, supabase_dir / "seed.sql", report, say)
        finally:
            await conn.execute("select pg_advisory_unlock($1)", LOCK_KEY)
    finally:
        if isinstance(url_or_conn, str):
            await conn.close()
    return report
