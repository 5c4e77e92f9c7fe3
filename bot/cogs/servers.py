"""Which members belong to which server, as the bot sees them, and the role resyncs imports queue.

Per-server boards (``/leaderboard`` and ``/rank`` in a server rank that server's members) read
``public.discord_guild_members``. This cog keeps it in step with what the bot sees:

- when a guild becomes available (start-up, reconnect, joining a guild) its cached human members are
  recorded in chunks of 1,000 (``service_role_discord_see_members``);
- a member joining is recorded, a member leaving is forgotten (``service_role_discord_forget_member``);
- passive XP records its member too (in ``service_role_discord_award`` itself).

It also takes the role resyncs an import queued (``service_role_discord_take_role_resyncs``, every
``RESYNC_SECONDS``) and brings every member's reward roles in line in those guilds.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord.ext import commands, tasks

from xpbase.errors import DomainError
from xpbase.models.communities import RoleResyncs
from xpbase.rpc import RPCError

if TYPE_CHECKING:
    from bot.bot import XPBot

log = logging.getLogger(__name__)

CHUNK = 1000  # service_role_discord_see_members takes at most 1000 members
RESYNC_SECONDS = 60.0


class Servers(commands.Cog):
    """Server membership for the per-server boards, and the role resyncs queued by imports."""

    def __init__(self, bot: XPBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.take_resyncs.start()

    async def cog_unload(self) -> None:
        self.take_resyncs.cancel()

    async def record(self, guild: discord.Guild, members: list[discord.Member] | None = None) -> int:
        """Record ``members`` (default: every cached human) as members of ``guild``; returns how many."""
        humans = [m for m in (guild.members if members is None else members) if not m.bot]
        seen = 0
        for start in range(0, len(humans), CHUNK):
            chunk = humans[start : start + CHUNK]
            seen += await self.bot.rpc.call(
                "service_role_discord_see_members",
                guild_id=str(guild.id),
                members=[{"user_id": str(m.id), "display_name": m.display_name} for m in chunk],
            )
        return seen

    @commands.Cog.listener()
    async def on_guild_available(self, guild: discord.Guild) -> None:
        try:
            seen = await self.record(guild)
            log.info("recorded %d member(s) of guild %s", seen, guild.id)
        except (DomainError, RPCError) as exc:
            log.warning("could not record the members of guild %s: %s", guild.id, exc)

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        await self.on_guild_available(guild)

    @commands.Cog.listener()
    async def on_member_join(self, member: discord.Member) -> None:
        if not member.bot:
            await self.record(member.guild, [member])

    @commands.Cog.listener()
    async def on_member_remove(self, member: discord.Member) -> None:
        if not member.bot:
            await self.bot.rpc.call(
                "service_role_discord_forget_member", guild_id=str(member.guild.id), user_id=str(member.id)
            )

    @tasks.loop(seconds=RESYNC_SECONDS)
    async def take_resyncs(self) -> None:
        """Resync the reward roles of every guild an import asked for (the bot's guilds only)."""
        try:
            queued: RoleResyncs = await self.bot.rpc.call("service_role_discord_take_role_resyncs")
        except (DomainError, RPCError) as exc:
            log.warning("could not read the queued role resyncs: %s", exc)
            return
        for resync in queued.resyncs:
            guild = self.bot.get_guild(int(resync.guild_id))
            if guild is None:
                continue
            result = await self.bot.rewards.sync_roles(guild, list(guild.members))
            log.info(
                "role resync of guild %s after an import: %d member(s), %d added, %d removed, %d failed",
                guild.id,
                result.members,
                result.added,
                result.removed,
                result.failed,
            )

    @take_resyncs.before_loop
    async def _wait_ready(self) -> None:
        await self.bot.wait_until_ready()


async def setup(bot: XPBot) -> None:
    await bot.add_cog(Servers(bot))
