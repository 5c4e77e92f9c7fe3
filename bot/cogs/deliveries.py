"""Discord DMs from the outbox: the bot drains its own channel of deliveries.

The outbox (supabase/sql/77_outbox.sql) writes a ``discord_dm`` delivery for
every notification a member routes to Discord, and wakes the bot with a
``pg_notify`` on ``xpbase_deliveries``. This cog claims due DMs with
``service_role_claim_discord_deliveries`` (``for update skip locked``: several
bots never send the same one; quiet hours are applied there), sends each one,
and records the outcome with ``service_role_finish_delivery`` (backoff, dead
after ``XPBASE_DELIVERY_MAX_ATTEMPTS``). It also polls (every 30 s when
listening, 10 s over PostgREST) for retries that come due.

Each DM carries the delivery's id as its ``nonce``. A bot that dies after
Discord accepted a DM and before recording it sends it again once the lease
(``XPBASE_DELIVERY_LEASE_SECONDS``) ends: at least once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from xpbase.errors import DomainError
from xpbase.models.outbox import Delivery, DiscordClaim
from xpbase.rpc import Listener, RPCError

if TYPE_CHECKING:
    from bot.bot import XPBot

log = logging.getLogger(__name__)

CHANNEL = "xpbase_deliveries"
BATCH = 20
POLL_SECONDS_LISTENING = 30.0
POLL_SECONDS_POLLING = 10.0


def dm_text(delivery: Delivery) -> str:
    """The DM: the notification's title in bold, its body, and how many a collapsed burst stands for."""
    lines = [f"**{delivery.title}**"]
    if delivery.body:
        lines.append(delivery.body)
    if delivery.collapsed:
        lines.append(f"(+{delivery.collapsed} more like it)")
    return "\n".join(lines)[:2000]


class DiscordDeliveries(commands.Cog):
    """Sends the outbox's Discord DMs: claim, send, finish."""

    def __init__(self, bot: XPBot) -> None:
        self.bot = bot
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: Listener | None = None

    async def cog_load(self) -> None:
        self._task = asyncio.create_task(self._run(), name="xpbase-discord-deliveries")

    async def cog_unload(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None

    async def send(self, delivery: Delivery) -> tuple[str, str | None]:
        """Send one DM; (outcome, error) as service_role_finish_delivery takes them."""
        try:
            channel = await self.bot.create_dm(discord.Object(id=int(delivery.target)))
            await channel.send(dm_text(delivery), nonce=f"xpd{delivery.id}")
        except (discord.Forbidden, discord.NotFound) as exc:
            return "failed", f"Discord {exc.status}: {exc.text}"[:1000]  # DMs closed, or no such user
        except discord.HTTPException as exc:
            return "retry", f"Discord {exc.status}: {exc.text}"[:1000]
        except (OSError, TimeoutError) as exc:
            return "retry", f"Discord: {type(exc).__name__}: {exc}"[:1000]
        return "sent", None

    async def process(self) -> int:
        """Claim and send every due DM; returns how many were sent."""
        settings = self.bot.settings
        sent = 0
        while True:
            claim = DiscordClaim.model_validate(
                await self.bot.rpc.call(
                    "service_role_claim_discord_deliveries",
                    max_rows=BATCH,
                    lease_seconds=settings.delivery_lease_seconds,
                )
            )
            for delivery in claim.deliveries:
                outcome, error = await self.send(delivery)
                await self.bot.rpc.call(
                    "service_role_finish_delivery",
                    delivery_id=delivery.id,
                    outcome=outcome,
                    error=error,
                    max_attempts=settings.delivery_max_attempts,
                    backoff_base_seconds=settings.delivery_backoff_base_seconds,
                    backoff_max_seconds=settings.delivery_backoff_max_seconds,
                )
                sent += outcome == "sent"
            if len(claim.deliveries) < BATCH:
                return sent

    async def _run(self) -> None:
        await self.bot.wait_until_ready()
        delay = 1.0
        while True:
            try:
                if self._listener is not None and not self._listener.alive:
                    self._listener = None
                if self._listener is None:
                    self._listener = await self.bot.rpc.listen(CHANNEL, lambda _payload: self._wake.set())
                await self.process()
                poll = POLL_SECONDS_LISTENING if self._listener is not None else POLL_SECONDS_POLLING
                # asyncio.timeout, not wait_for, which on Python 3.11 can lose the cancellation that stops
                # this loop (python/cpython#86296).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(poll):
                        await self._wake.wait()
                self._wake.clear()
                delay = 1.0
            except (RPCError, DomainError, OSError) as exc:
                log.warning("discord deliveries: %s; retrying in %.0f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)


async def setup(bot: XPBot) -> None:
    await bot.add_cog(DiscordDeliveries(bot))
