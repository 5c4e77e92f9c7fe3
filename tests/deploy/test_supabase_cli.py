"""The Supabase CLI (pinned in tools/package.json) deploys supabase/ to the same catalog as `xpbase migrate`.

A fresh database on the test server gets Supabase's roles and ``auth`` schema
(supabase/compat/auth.sql, what a Supabase project has before its first
migration); then ``supabase db push --include-seed`` runs from a copy of the
repository's supabase/ folder, as a developer runs it against a project. Its
``pg_dump --schema-only`` must equal that of the template database
``xpbase migrate`` built.

``make test`` installs the CLI and sets XPBASE_REQUIRE_SUPABASE_CLI=1, so these
tests fail rather than skip in CI when it is missing.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from pytest_postgresql.executors.noop import NoopExecutor
from pytest_postgresql.janitor import DatabaseJanitor

from tests.conftest import cloned_database
from xpbase import embedded
from xpbase.migrate import list_migrations
from xpbase.settings import REPO_ROOT, Settings

CLI = REPO_ROOT / "tools" / "node_modules" / ".bin" / "supabase"
CLI_VERSION = json.loads((REPO_ROOT / "tools" / "package.json").read_text())["devDependencies"]["supabase"]


@pytest.fixture(scope="module")
def supabase_cli() -> Path:
    """The pinned Supabase CLI; skips without it, unless XPBASE_REQUIRE_SUPABASE_CLI=1 (then fails)."""
    if not CLI.exists():
        reason = f"the Supabase CLI is not installed in tools/: `make test` installs it ({CLI})"
        if os.environ.get("XPBASE_REQUIRE_SUPABASE_CLI") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return CLI


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder holding a copy of the repository's supabase/ (the CLI writes supabase/.temp)."""
    root = tmp_path_factory.mktemp("supabase-project")
    ignore = shutil.ignore_patterns(".temp", ".branches")
    shutil.copytree(REPO_ROOT / "supabase", root / "supabase", ignore=ignore)
    (root / "home").mkdir()
    return root


def run_cli(cli: Path, workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI in ``workdir``: its home (profile, telemetry) inside it, telemetry off."""
    env = {
        **os.environ,
        "HOME": str(workdir / "home"),
        "DO_NOT_TRACK": "1",
        "SUPABASE_TELEMETRY_DISABLED": "1",
    }
    return subprocess.run([str(cli), *args], cwd=workdir, env=env, capture_output=True, text=True)


def _tcp(server: NoopExecutor, url: str) -> str:
    """The TCP URL (what the CLI needs) of the database that the socket ``url`` names."""
    return embedded.tcp_url(int(server.port), urlsplit(url).path.lstrip("/"))


@pytest.fixture(scope="module")
def pushed(pg_server: NoopExecutor, supabase_cli: Path, workdir: Path) -> Iterator[tuple[str, str]]:
    """A new database, compat/auth.sql, then `supabase db push --include-seed`: (TCP URL, CLI output)."""
    name = "xpbase_cli_push"
    janitor = DatabaseJanitor(
        user=pg_server.user, host=pg_server.host, port=pg_server.port, dbname=name, password=None
    )
    with janitor:
        url = embedded.tcp_url(int(pg_server.port), name)
        compat_sql = REPO_ROOT / "supabase" / "compat" / "auth.sql"
        psql = [str(embedded.pg_bin("psql")), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
        compat = subprocess.run(
            [*psql, "-d", url, "-f", str(compat_sql)],
            capture_output=True,
            text=True,
        )
        assert compat.returncode == 0, compat.stderr
        push = run_cli(supabase_cli, workdir, "db", "push", "--db-url", url, "--include-seed", "--yes")
        output = push.stdout + push.stderr
        assert push.returncode == 0, output
        yield url, output


@pytest.fixture(scope="module")
def migrated(xpbase_template: NoopExecutor) -> Iterator[str]:
    """A database cloned from the template that `xpbase migrate` built (TCP URL)."""
    with cloned_database(xpbase_template, "xpbase_migrated") as url:
        yield _tcp(xpbase_template, url)


def schema_dump(url: str) -> list[str]:
    """`pg_dump --schema-only` of ``url``, without the per-run random ``\\restrict`` keys."""
    dump = subprocess.run(
        [str(embedded.pg_bin("pg_dump")), "--schema-only", "-d", url], capture_output=True, text=True
    )
    assert dump.returncode == 0, dump.stderr
    return [
        line for line in dump.stdout.splitlines() if not line.startswith(("\\restrict ", "\\unrestrict "))
    ]


def describe_difference(ours: list[str], theirs: list[str]) -> str:
    """The objects (pg_dump's ``-- Name:`` headers) only one dump has, then the start of a diff."""

    def objects(lines: list[str]) -> set[str]:
        return {line.removeprefix("-- ") for line in lines if line.startswith("-- Name: ")}

    missing, extra = sorted(objects(ours) - objects(theirs)), sorted(objects(theirs) - objects(ours))
    diff = difflib.unified_diff(ours, theirs, "xpbase migrate", "supabase db push", lineterm="", n=1)
    return "\n".join(
        [
            f"{len(missing)} object(s) only after xpbase migrate:",
            *missing[:40],
            f"{len(extra)} object(s) only after supabase db push:",
            *extra[:40],
            "diff (first 80 lines):",
            *list(diff)[:80],
        ]
    )


async def fetch(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` on ``url`` as tuples."""
    conn = await asyncpg.connect(url)
    try:
        return [tuple(row) for row in await conn.fetch(sql)]
    finally:
        await conn.close()


def test_the_pinned_cli_runs(supabase_cli: Path, workdir: Path) -> None:
    """tools/ holds the CLI version that tools/package.json pins."""
    version = run_cli(supabase_cli, workdir, "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == CLI_VERSION


def test_db_push_makes_the_catalog_xpbase_migrate_makes(
    pushed: tuple[str, str], migrated: str, supabase_cli: Path, workdir: Path
) -> None:
    """Every table, function, trigger, policy, grant and comment: the pushed schema dump equals ours."""
    url, output = pushed
    assert "Finished supabase db push." in output
    theirs, ours = schema_dump(url), schema_dump(migrated)
    assert theirs == ours, describe_difference(ours, theirs)

    again = run_cli(supabase_cli, workdir, "db", "push", "--db-url", url, "--include-seed", "--yes")
    assert again.returncode == 0, again.stderr
    assert "Remote database is up to date." in again.stdout + again.stderr


async def test_migration_list_agrees_with_xpbase_migrate(
    pushed: tuple[str, str], migrated: str, supabase_cli: Path, workdir: Path
) -> None:
    """`supabase migration list` finds every local migration applied where `xpbase migrate` ran."""
    listed = run_cli(
        supabase_cli, workdir, "migration", "list", "--db-url", migrated, "--output-format", "json"
    )
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)["migrations"]
    migrations = list_migrations(REPO_ROOT / "supabase")
    local = [m.version for m in migrations]
    assert [row["local"] for row in rows] == local
    assert [row["remote"] for row in rows] == local
    recorded = await fetch(
        migrated, "select version, name from supabase_migrations.schema_migrations order by version"
    )
    pushed_records = await fetch(
        pushed[0], "select version, name from supabase_migrations.schema_migrations order by version"
    )
    assert recorded == pushed_records == [(m.version, m.name) for m in migrations]


async def test_seed_is_recorded_as_xpbase_migrate_records_it(pushed: tuple[str, str], migrated: str) -> None:
    """The CLI records supabase/seed.sql with the sha256 of its bytes; `xpbase migrate` the same row."""
    seed = (REPO_ROOT / "supabase" / "seed.sql").read_bytes()
    query = "select path, hash from supabase_migrations.seed_files order by path"
    theirs = await fetch(pushed[0], query)
    assert theirs == [("supabase/seed.sql", hashlib.sha256(seed).hexdigest())]
    assert await fetch(migrated, query) == theirs


@pytest.mark.parametrize(("command", "column"), [("outliers", "Execution Time"), ("calls", "Number Calls")])
def test_inspect_db_prints_pg_stat_statements(
    pushed: tuple[str, str], supabase_cli: Path, workdir: Path, command: str, column: str
) -> None:
    """`supabase inspect db outliers|calls` read extensions.pg_stat_statements on the embedded server."""
    inspected = run_cli(supabase_cli, workdir, "inspect", "db", command, "--db-url", pushed[0])
    assert inspected.returncode == 0, inspected.stdout + inspected.stderr
    lines = [line.strip() for line in inspected.stdout.splitlines() if line.strip()]
    header = next(i for i, line in enumerate(lines) if line.startswith("Query") and column in line)
    assert set(lines[header + 1]) <= set("-|"), "no table rule under the header"
    assert len(lines) > header + 2, "the table has no rows"


def _keys(table: dict[str, Any], prefix: str = "") -> set[str]:
    found = set()
    for key, value in table.items():
        path = f"{prefix}{key}"
        found |= _keys(value, f"{path}.") if isinstance(value, dict) else {path}
    return found


def test_config_uses_only_keys_of_the_cli_template(supabase_cli: Path, tmp_path: Path) -> None:
    """supabase/config.toml uses only keys that `supabase init` writes (the CLI ignores unknown keys)."""
    (tmp_path / "home").mkdir()
    made = run_cli(supabase_cli, tmp_path, "init", "--yes")
    assert made.returncode == 0, made.stderr
    template = tomllib.loads((tmp_path / "supabase" / "config.toml").read_text())
    ours = tomllib.loads((REPO_ROOT / "supabase" / "config.toml").read_text())
    # The template spells out one OAuth provider (apple); every provider takes the same keys.
    provider_keys = set(template["auth"]["external"]["apple"])
    for provider, keys in ours["auth"].get("external", {}).items():
        assert set(keys) <= provider_keys, f"auth.external.{provider}: {set(keys) - provider_keys}"
    ours["auth"].pop("external", None)
    assert _keys(ours) - _keys(template) == set()

    # Supabase Auth's tokens live as long as the service's, with the same reuse grace.
    defaults = Settings.model_fields
    assert ours["auth"]["jwt_expiry"] == defaults["jwt_access_ttl_seconds"].default
    reuse = defaults["refresh_token_reuse_grace_seconds"].default
    assert ours["auth"]["refresh_token_reuse_interval"] == reuse
