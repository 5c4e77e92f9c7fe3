"""Relaying Postgres notifications to websockets: one listening connection per process.

The database announces every new notification row on channel
``xpbase_notifications`` (payload ``{"id", "profile_id", "kind"}``) and every
chat message on ``xpbase_chat`` (payload ``{"id", "profile_id"}``). One
dedicated asyncpg connection per service process LISTENs on both and fans out
to the websockets of that process. Any role may ``NOTIFY`` on any channel, so
a payload is only a hint that something new may be stored; nothing in it is
ever sent to a client:

- a notification goes to the websockets of its member only; the relay reads
  the row by id *as that member* (role ``authenticated`` with their claims),
  so row-level security decides what is sent and a forged payload naming
  someone else's notification sends nothing;
- a chat message wakes every chat websocket with a :class:`ChatWake`; each
  socket then reads the stored messages after the last one it sent, as its
  own caller under RLS (service/blueprints/chat.py).

Several service processes on one database each run their own relay, so a
message posted through one process reaches clients of all of them.

When the listening connection is lost (database restart, failover,
``pg_terminate_backend``) the relay reconnects with backoff (0.1 s doubling
to 5 s) and then tells every subscriber to catch up (``Resync``): events sent
while nobody listened are read back from the tables by id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from xpbase.db import Database

log = logging.getLogger(__name__)

NOTIFICATIONS_CHANNEL = "xpbase_notifications"
CHAT_CHANNEL = "xpbase_chat"
NOTIFICATION_COLUMNS = "id, kind, title, body, data, created_at, read_at"


@dataclass(frozen=True)
class Resync:
    """Put on every subscriber's queue after a reconnect: re-read what may have been missed."""


@dataclass(frozen=True)
class ChatWake:
    """Put on every chat subscriber's queue for a NOTIFY on xpbase_chat: message ``id`` may be stored."""

    id: int


Event = dict[str, Any] | Resync | ChatWake


def notification_json(row: asyncpg.Record) -> dict[str, Any]:
    """A notifications row as sent to clients (times in ISO 8601 UTC)."""
    out = dict(row)
    for key in ("created_at", "read_at"):
        if out.get(key) is not None:
            out[key] = out[key].isoformat()
    return out


class Relay:
    """One LISTEN connection per process and the queues of the websockets it feeds.

    ``start()`` connects (retrying until it succeeds) and keeps the connection
    alive in a background task; ``stop()`` ends it. Subscribers get an
    ``asyncio.Queue`` of events: dicts (a notification row, or a chat message)
    and ``Resync`` markers.
    """

    def __init__(
        self, url: str, database: Database, *, max_backoff: float = 5.0, ping_interval: float = 30.0
    ) -> None:
        self.url = url
        self.database = database
        self.max_backoff = max_backoff
        self.ping_interval = ping_interval
        self.connected = asyncio.Event()
        self.reconnects = 0
        self._members: defaultdict[UUID, set[asyncio.Queue[Event]]] = defaultdict(set)
        self._chat: set[asyncio.Queue[Event]] = set()
        self._chat_members: defaultdict[UUID, int] = defaultdict(int)
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self._pending: set[asyncio.Task[None]] = set()

    # -- lifecycle -------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start listening in the background; returns once the first connection is up (or keeps trying)."""
        self._task = asyncio.create_task(self._run(), name="xpbase-relay")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.connected.wait(), timeout=10)

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for task in list(self._pending):
            task.cancel()
        await self._close()

    @property
    def backend_pid(self) -> int | None:
        """The server process id of the listening connection (None while disconnected)."""
        return self._conn.get_server_pid() if self._conn is not None and not self._conn.is_closed() else None

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        self.connected.clear()
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), timeout=2)
            if not conn.is_closed():
                conn.terminate()

    async def _connect(self) -> None:
        conn = await asyncpg.connect(self.url)
        self._lost.clear()
        conn.add_termination_listener(lambda _conn: self._lost.set())
        await conn.add_listener(NOTIFICATIONS_CHANNEL, self._on_notify)
        await conn.add_listener(CHAT_CHANNEL, self._on_notify)
        self._conn = conn
        self.connected.set()

    async def _run(self) -> None:
        backoff = 0.1
        first = True
        while True:
            try:
                await self._connect()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("relay: cannot listen yet (%s); retrying in %.1f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            backoff = 0.1
            if not first:
                self.reconnects += 1
                log.info("relay: listening again after a lost connection; subscribers resync")
                self._broadcast_resync()
            first = False
            await self._watch()
            log.warning("relay: the listening connection was lost; reconnecting")
            await self._close()

    async def _watch(self) -> None:
        """Return when the listening connection is lost (termination callback, or a failed ping)."""
        while True:
            # asyncio.timeout, not wait_for, which on Python 3.11 can lose the cancellation that stops the
            # relay (python/cpython#86296).
            try:
                async with asyncio.timeout(self.ping_interval):
                    await self._lost.wait()
                return
            except TimeoutError:
                pass
            try:
                assert self._conn is not None
                async with asyncio.timeout(5):
                    await self._conn.fetchval("select 1")
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, AssertionError):
                return

    # -- subscriptions ---------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def member_events(self, profile_id: UUID) -> Iterator[asyncio.Queue[Event]]:
        """A queue of the member's notifications for the life of the block."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._members[profile_id].add(queue)
        try:
            yield queue
        finally:
            self._members[profile_id].discard(queue)
            if not self._members[profile_id]:
                del self._members[profile_id]

    def chat_sockets(self, profile_id: UUID) -> int:
        """How many chat subscriptions the member holds in this process."""
        return self._chat_members.get(profile_id, 0)

    @contextlib.contextmanager
    def chat_events(self, profile_id: UUID) -> Iterator[asyncio.Queue[Event]]:
        """A queue of ChatWake (and Resync) events for the life of the block, counted for the member."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._chat.add(queue)
        self._chat_members[profile_id] += 1
        try:
            yield queue
        finally:
            self._chat.discard(queue)
            self._chat_members[profile_id] -= 1
            if not self._chat_members[profile_id]:
                del self._chat_members[profile_id]

    def _broadcast_resync(self) -> None:
        for queues in self._members.values():
            for queue in queues:
                queue.put_nowait(Resync())
        for queue in self._chat:
            queue.put_nowait(Resync())

    # -- incoming notifications ------------------------------------------------------------------------------

    def _on_notify(self, _conn: asyncpg.Connection, _pid: int, channel: str, payload: str) -> None:
        try:
            data = json.loads(payload)
        except ValueError:
            log.warning("relay: ignoring a malformed payload on %s", channel)
            return
        if channel == CHAT_CHANNEL:
            try:
                wake = ChatWake(int(data["id"]))
            except (KeyError, TypeError, ValueError):
                log.warning("relay: ignoring a malformed chat payload")
                return
            for queue in self._chat:
                queue.put_nowait(wake)
            return
        try:
            profile_id = UUID(str(data["profile_id"]))
            notification_id = int(data["id"])
        except (KeyError, TypeError, ValueError):
            log.warning("relay: ignoring a malformed notification payload")
            return
        if profile_id in self._members:
            task = asyncio.create_task(self._deliver(profile_id, notification_id))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _deliver(self, profile_id: UUID, notification_id: int) -> None:
        try:
            async with self.database.as_member(profile_id) as conn:
                row = await conn.fetchrow(
                    f"select {NOTIFICATION_COLUMNS} from public.notifications where id = $1", notification_id
                )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("relay: could not read notification %s: %s", notification_id, exc)
            return
        if row is None:
            return
        event = notification_json(row)
        for queue in self._members.get(profile_id, ()):
            queue.put_nowait(event)
