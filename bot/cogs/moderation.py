"""Moderation commands: /warn, /suspend, /unsuspend (supabase/sql/13_moderation.sql).

Each command is one call of ``service_role_moderate`` acting for the invoking
member's profile: SQL checks that their xpbase role holds the permission
(moderators and admins: warn_members, suspend_members), so Discord's own
permission (Timeout Members, ``default_permissions``) only hides the commands
from everyone else. A suspended member earns no XP, cannot chat, buy or
redeem; /suspend without ``days`` is a ban, which also ends their web
sessions. Answers are private (ephemeral); refusals come through bot/replies.py.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.replies import Refusal, defer, reply
from xpbase.models.accounts import Moderated

if TYPE_CHECKING:
    from bot.bot import XPBot

Reason = app_commands.Range[str, 1, 500]


class Moderation(commands.Cog):
    """Warn, suspend and unsuspend members (xpbase moderators and admins)."""

    def __init__(self, bot: XPBot) -> None:
        self.bot = bot

    async def interaction_check(self, interaction: discord.Interaction) -> bool:  # type: ignore[override]
        if interaction.guild is None:
            raise app_commands.NoPrivateMessage()
        return True

    async def _moderate(
        self,
        interaction: discord.Interaction,
        action: str,
        member: discord.Member,
        reason: str,
        until: dt.datetime | None = None,
    ) -> Moderated:
        if member.bot:
            raise Refusal("Bots cannot be moderated here.")
        await defer(interaction, ephemeral=True)
        actor_id = await self.bot.ensure_profile(interaction.user)
        profile_id = await self.bot.ensure_profile(member)
        answer: Moderated = await self.bot.rpc.call(
            "service_role_moderate",
            actor_id=actor_id,
            action=action,
            profile_id=profile_id,
            reason=reason,
            until=until.isoformat() if until else None,
        )
        return answer

    @app_commands.command(name="warn", description="Warn a member (kept in their moderation record).")
    @app_commands.describe(member="Who", reason="Why (the member can read it)")
    @app_commands.guild_only()
    @app_commands.default_permissions(moderate_members=True)
    async def warn(self, interaction: discord.Interaction, member: discord.Member, reason: Reason) -> None:
        await self._moderate(interaction, "warn", member, reason)
        await reply(interaction, f"Warned {member.mention}.")

    @app_commands.command(
        name="suspend", description="Suspend a member: no XP, chat, purchases (no days: a ban)."
    )
    @app_commands.describe(
        member="Who", reason="Why (the member can read it)", days="How long; omit for a ban"
    )
    @app_commands.guild_only()
    @app_commands.default_permissions(moderate_members=True)
    async def suspend(
        self,
        interaction: discord.Interaction,
        member: discord.Member,
        reason: Reason,
        days: app_commands.Range[int, 1, 3650] | None = None,
    ) -> None:
        until = dt.datetime.now(dt.UTC) + dt.timedelta(days=days) if days else None
        answer = await self._moderate(interaction, "suspend", member, reason, until)
        if answer.record is not None and answer.record.until is not None:
            stamp = int(answer.record.until.timestamp())
            await reply(interaction, f"Suspended {member.mention} until <t:{stamp}:f>.")
        else:
            await reply(
                interaction,
                f"Banned {member.mention} (until lifted); {answer.sessions_revoked} web session(s) ended.",
            )

    @app_commands.command(name="unsuspend", description="Lift a member's suspension or ban.")
    @app_commands.describe(member="Who", reason="Why (kept in their moderation record)")
    @app_commands.guild_only()
    @app_commands.default_permissions(moderate_members=True)
    async def unsuspend(
        self, interaction: discord.Interaction, member: discord.Member, reason: Reason
    ) -> None:
        answer = await self._moderate(interaction, "unsuspend", member, reason)
        if answer.lifted:
            await reply(interaction, f"Lifted the suspension of {member.mention}.")
        else:
            await reply(interaction, f"{member.mention} was not suspended.")


async def setup(bot: XPBot) -> None:
    await bot.add_cog(Moderation(bot))
