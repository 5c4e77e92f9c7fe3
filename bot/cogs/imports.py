"""``/importxp``: move this server in from another leveling bot, from an export file attached to the command.

The same importer as ``xpbase import`` and ``POST /v1/admin/imports/<source>`` (xpbase/importers.py): the
file is read as a stream and sent in batches to ``admin_import_members``; each member becomes one ledger
row of activity ``import`` (a second run changes nothing), level roles are copied into the server's role
rewards, and (unless it is a dry run) every member's reward roles are resynced at once. Manage Server only.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.replies import Refusal, defer, reply
from xpbase.importers import ImportSummary, run_import

if TYPE_CHECKING:
    from bot.bot import XPBot

MAX_ATTACHMENT_BYTES = 64 * 2**20
BAD_ROWS_IN_MESSAGE = 10


def describe(summary: ImportSummary) -> discord.Embed:
    """The import's outcome as an embed: members per status, XP, profiles made, level roles, bad rows."""
    verb = "would be" if summary.dry_run else "were"
    embed = discord.Embed(
        title=f"{'Dry run: ' if summary.dry_run else ''}{summary.source} import (keep {summary.keep})",
        colour=discord.Colour.blurple(),
    )
    counts = "\n".join(f"{status}: {n:,}" for status, n in sorted(summary.counts.items())) or "none"
    embed.add_field(name=f"Members read: {summary.read:,}", value=counts)
    embed.add_field(name=f"XP that {verb} granted", value=f"{summary.xp_granted:,}")
    embed.add_field(name=f"Profiles that {verb} made", value=f"{summary.new_profiles:,}")
    if summary.role_rewards and summary.role_rewards.rewards:
        embed.add_field(
            name="Level roles",
            value="\n".join(
                f"<@&{r.role_id}> from level {r.min_level} ({r.status})" for r in summary.role_rewards.rewards
            )[:1024],
            inline=False,
        )
    if summary.bad_rows:
        shown = "\n".join(f"{b.where}: {b.reason}" for b in summary.bad_rows[:BAD_ROWS_IN_MESSAGE])
        more = len(summary.bad_rows) - BAD_ROWS_IN_MESSAGE
        embed.add_field(
            name=f"Bad rows (not imported): {len(summary.bad_rows):,}",
            value=(shown + (f"\n… and {more:,} more (attached)" if more > 0 else ""))[:1024],
            inline=False,
        )
    return embed


class Imports(commands.Cog):
    """Moving a server in from MEE6, Amari, Polaris, LevelUp or a CSV (Manage Server)."""

    def __init__(self, bot: XPBot) -> None:
        self.bot = bot

    @app_commands.command(name="importxp", description="Import members' XP from another bot's export file.")
    @app_commands.describe(
        source="Which bot the file comes from",
        file="The export: MEE6/Amari/Polaris leaderboard JSON, a LevelUp backup, or a CSV of id and xp/level",
        keep="Keep the XP number, or the level (and progress) on this server's curve",
        dry_run="Show what would change and write nothing",
    )
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    async def importxp(
        self,
        interaction: discord.Interaction,
        source: Literal["mee6", "amari", "polaris", "levelup", "csv"],
        file: discord.Attachment,
        keep: Literal["xp", "level"] = "xp",
        dry_run: bool = False,
    ) -> None:
        if interaction.guild is None:
            raise app_commands.NoPrivateMessage()
        if not interaction.permissions.manage_guild:
            raise app_commands.MissingPermissions(["manage_guild"])
        if file.size > MAX_ATTACHMENT_BYTES:
            raise Refusal(
                f"That file is larger than {MAX_ATTACHMENT_BYTES // 2**20} MiB: use `xpbase import`."
            )
        await defer(interaction, ephemeral=True)
        data = await file.read()
        summary = await run_import(
            self.bot.rpc.call, source, io.BytesIO(data), str(interaction.guild.id), keep=keep, dry_run=dry_run
        )
        if not dry_run:
            await self.bot.rewards.sync_roles(interaction.guild, list(interaction.guild.members))
        files = []
        if len(summary.bad_rows) > BAD_ROWS_IN_MESSAGE:
            listing = "\n".join(f"{b.where}\t{b.reason}" for b in summary.bad_rows)
            files.append(discord.File(io.BytesIO(listing.encode()), filename="bad-rows.txt"))
        await reply(interaction, embed=describe(summary), files=files)


async def setup(bot: XPBot) -> None:
    await bot.add_cog(Imports(bot))
