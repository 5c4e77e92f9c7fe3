"""Badges: ``/badges`` shows the badges a member holds (supabase/sql/33_badges.sql)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.replies import Refusal, defer, reply
from xpbase.models.badges import ProfileBadges

if TYPE_CHECKING:
    from bot.bot import XPBot

#: How each level looks in the list.
MEDALS = {"gold": "🥇", "silver": "🥈", "bronze": "🥉"}
#: Badges listed in one embed (newest first); the counts cover them all.
SHOWN = 15


class Badges(commands.Cog):
    """The ``/badges`` command: a member's badges, newest first, with counts per level."""

    def __init__(self, bot: XPBot) -> None:
        self.bot = bot

    @app_commands.command(name="badges", description="The badges a member has earned.")
    @app_commands.describe(member="Whose badges to show (yours if left out)")
    async def badges(self, interaction: discord.Interaction, member: discord.User | None = None) -> None:
        target = member or interaction.user
        if target.bot:
            raise Refusal("Bots do not earn badges.")
        await defer(interaction, ephemeral=True)
        if target.id == interaction.user.id:
            profile_id = await self.bot.ensure_profile(target)
        else:
            # As the viewer: a profile the viewer may not see is refused (XPHID), as /profile does.
            await self.bot.ensure_profile(interaction.user)
            profile_id = str((await self.bot.member_profile(target, viewer=interaction.user)).profile_id)
        held: ProfileBadges = await self.bot.rpc.call("profile_badges", profile_id=profile_id)
        counts = held.counts
        embed = discord.Embed(
            title=f"Badges of {target.display_name}",
            description=f"{MEDALS['gold']} {counts.gold} · {MEDALS['silver']} {counts.silver} · "
            f"{MEDALS['bronze']} {counts.bronze}",
            colour=discord.Colour.gold(),
        )
        for badge in held.badges[:SHOWN]:
            times = f" ×{badge.times}" if badge.times > 1 else ""
            when = discord.utils.format_dt(badge.last_awarded_at, "D")
            embed.add_field(
                name=f"{MEDALS[badge.level]} {badge.name}{times}",
                value=f"{badge.description or badge.slug}\n{when}",
                inline=False,
            )
        if not held.badges:
            embed.add_field(name="None yet", value="Badges come with XP: see them all on the web.")
        await reply(interaction, embed=embed)


async def setup(bot: XPBot) -> None:
    await bot.add_cog(Badges(bot))
