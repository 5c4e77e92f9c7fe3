"""The notifications stream: level-ups and tier-ups from any source, announced on Discord.

XP also arrives from outside the bot (the web, the service, importers). The
engine writes a ``level_up``/``tier_up`` notification for each and sends a
``pg_notify`` on ``xpbase_notifications``. Over asyncpg the relay LISTENs on
that channel and reads new notifications when woken (and every minute, in
case a wake-up was lost); over PostgREST it polls every 10 seconds. It reads
with ``service_role_discord_notifications`` from a cursor that starts at the
newest notification when the bot starts: level-ups from while the bot was
offline are not announced (``/resyncroles`` fixes the roles).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from discord.ext import commands

from xpbase.errors import DomainError
from xpbase.models.discord import DiscordNotifications
from xpbase.rpc import Listener, RPCError

if TYPE_CHECKING:
    from bot.bot import XPBot

log = logging.getLogger(__name__)

CHANNEL = "xpbase_notifications"
BATCH = 200
POLL_SECONDS_LISTENING = 60.0
POLL_SECONDS_POLLING = 10.0
DEBOUNCE_SECONDS = 0.5  # lets the bot's own award calls return before their notifications are read


class NotificationRelay(commands.Cog):
    """Announces level-ups and tier-ups that happened outside the bot, and applies their role rewards."""

    def __init__(self, bot: XPBot) -> None:
        self.bot = bot
        self.cursor: int | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: Listener | None = None

    async def cog_load(self) -> None:
        self._task = asyncio.create_task(self._run(), name="xpbase-notification-relay")

    async def cog_unload(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._stop_listening()

    async def _stop_listening(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None

    async def start(self) -> None:
        """Place the cursor at the newest notification and start listening (when the transport can)."""
        if self.cursor is None:
            start: DiscordNotifications = await self.bot.rpc.call(
                "service_role_discord_notifications", after_id=None
            )
            self.cursor = start.cursor
        if self._listener is not None and not self._listener.alive:
            await self._stop_listening()  # the database restarted: listen again on a new connection
        if self._listener is None:
            self._listener = await self.bot.rpc.listen(CHANNEL, lambda _payload: self._wake.set())

    async def process(self) -> int:
        """Read every notification after the cursor and hand level-ups and tier-ups to the rewards; returns
        how many changes were handled. Moves the cursor past everything read."""
        if self.cursor is None:
            await self.start()
            return 0
        handled = 0
        while True:
            batch: DiscordNotifications = await self.bot.rpc.call(
                "service_role_discord_notifications", after_id=self.cursor, max_rows=BATCH
            )
            if batch.notifications:
                handled += await self.bot.rewards.on_notifications(batch.notifications)
            cursor = batch.cursor
            if cursor == self.cursor:
                return handled
            self.cursor = cursor

    async def _run(self) -> None:
        await self.bot.wait_until_ready()
        delay = 1.0
        while True:
            try:
                await self.start()
                poll = POLL_SECONDS_LISTENING if self._listener is not None else POLL_SECONDS_POLLING
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=poll)
                self._wake.clear()
                await asyncio.sleep(DEBOUNCE_SECONDS)
                await self.process()
                delay = 1.0
            except (RPCError, DomainError, OSError) as exc:
                log.warning("notification relay: %s; retrying in %.0f s", exc, delay)
                await self._stop_listening()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)


async def setup(bot: XPBot) -> None:
    await bot.add_cog(NotificationRelay(bot))
