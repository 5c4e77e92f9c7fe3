"""Tools: ``/tools`` lists the tools a member may use and how they got each (supabase/sql/37_tools.sql)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.replies import defer, reply
from xpbase.models.tools import AdminSource, MyTools, StoreSource, TierSource

if TYPE_CHECKING:
    from bot.bot import XPBot

#: Tools listed in one embed (by slug); the title counts them all.
SHOWN = 20


def how(source: TierSource | StoreSource | AdminSource) -> str:
    """One way a tool is held, for people."""
    if isinstance(source, TierSource):
        return f"tier {source.tier_name}"
    if isinstance(source, StoreSource):
        return f"bought: {source.item_name}"
    return "unlocked by an admin"


class Tools(commands.Cog):
    """The ``/tools`` command: the caller's tools (private: the store and admin unlocks are theirs)."""

    def __init__(self, bot: XPBot) -> None:
        self.bot = bot

    @app_commands.command(name="tools", description="The tools you can use, and how you got each.")
    async def tools(self, interaction: discord.Interaction) -> None:
        await defer(interaction, ephemeral=True)
        profile_id = await self.bot.ensure_profile(interaction.user)
        mine: MyTools = await self.bot.rpc.call("my_tools", profile_id=profile_id)
        embed = discord.Embed(title=f"Your tools ({len(mine.root)})", colour=discord.Colour.teal())
        for tool in mine.root[:SHOWN]:
            embed.add_field(
                name=tool.name,
                value=f"{tool.description or tool.slug}\n*{', '.join(how(s) for s in tool.sources)}*",
                inline=False,
            )
        if not mine.root:
            embed.description = "None yet: tiers, the store and admins unlock tools."
        await reply(interaction, embed=embed)


async def setup(bot: XPBot) -> None:
    await bot.add_cog(Tools(bot))
