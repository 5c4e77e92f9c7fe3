"""Server admin commands (Manage Server): XP corrections, statistics and the bot's configuration.

Corrections go through ``service_role_admin_adjust_xp`` / ``_set_level`` /
``_reset_xp``: ledger rows whose actor is the admin's own profile (from their
Discord identity) with the reason they typed, under the idempotency key
``discord:admin:<interaction id>`` so a retried interaction changes nothing
twice. Configuration is written through ``service_role_discord_set_*`` and
lives in the database per guild.

Discord hides these commands from members without Manage Server
(``default_permissions``), and the cog checks the permission again on every
call, since a server can change who sees a command.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.replies import Refusal, defer, reply
from xpbase.models.discord import ActivityToday, DiscordStats, GuildConfig
from xpbase.models.engine import CorrectionReceipt

if TYPE_CHECKING:
    from bot.bot import XPBot

log = logging.getLogger(__name__)

Reason = app_commands.Range[str, 1, 500]
AnnounceMode = Literal["channel", "current", "dm", "off"]
XPChannel = discord.TextChannel | discord.VoiceChannel | discord.StageChannel | discord.ForumChannel


def _describe_config(config: GuildConfig) -> discord.Embed:
    """The guild's configuration as an embed, with channels and roles as mentions."""
    embed = discord.Embed(title="XP settings of this server", colour=discord.Colour.blurple())
    channel = config.announce_channel_id
    where = {
        "channel": f"in <#{channel}>",
        "current": "in the channel where the XP was earned"
        + (f" (XP from elsewhere: <#{channel}>)" if channel else ""),
        "dm": "by direct message",
        "off": "nowhere (off)",
    }[config.announce_mode]
    embed.add_field(name="Level-up announcements", value=where, inline=False)
    embed.add_field(name="No-XP channels", value=" ".join(f"<#{c}>" for c in config.no_xp_channels) or "none")
    embed.add_field(name="No-XP roles", value=" ".join(f"<@&{r}>" for r in config.no_xp_roles) or "none")
    multipliers = [
        f"{'<#' if m.kind == 'channel' else '<@&'}{m.target_id}> ×{m.factor:g}" for m in config.multipliers
    ]
    embed.add_field(name="Multipliers", value="\n".join(multipliers) or "none", inline=False)
    rewards = [
        f"<@&{r.role_id}> at " + (f"level {r.min_level}" if r.min_level else f"the {r.tier_name} tier")
        for r in config.role_rewards
    ]
    embed.add_field(name="Role rewards", value="\n".join(rewards) or "none", inline=False)
    return embed


class Admin(commands.Cog):
    """For server admins (Manage Server): correct XP, see statistics, configure the bot for this server."""

    config = app_commands.Group(
        name="xpconfig",
        description="Configure XP for this server (Manage Server)",
        guild_only=True,
        default_permissions=discord.Permissions(manage_guild=True),
    )

    def __init__(self, bot: XPBot) -> None:
        self.bot = bot

    async def interaction_check(self, interaction: discord.Interaction) -> bool:  # type: ignore[override]
        """Every command of this cog: in a server, by someone with Manage Server."""
        if interaction.guild is None:
            raise app_commands.NoPrivateMessage()
        if not interaction.permissions.manage_guild:
            raise app_commands.MissingPermissions(["manage_guild"])
        return True

    # XP corrections --------------------------------------------------------------------

    async def _correct(
        self,
        interaction: discord.Interaction,
        member: discord.Member,
        function: str,
        *,
        create: bool,
        **params: Any,
    ) -> CorrectionReceipt:
        if member.bot:
            raise Refusal("Bots do not earn XP.")
        await defer(interaction, ephemeral=True)
        actor_id = await self.bot.ensure_profile(interaction.user)
        if create:
            profile_id = await self.bot.ensure_profile(member)
        else:
            profile_id = str((await self.bot.member_profile(member)).profile_id)
        receipt: CorrectionReceipt = await self.bot.rpc.call(
            function,
            actor_id=actor_id,
            profile_id=profile_id,
            idempotency_key=f"discord:admin:{interaction.id}",
            **params,
        )
        if receipt.level < receipt.level_before:
            # A loss writes no notification (a gain reaches the rewards cog through its queue): the member's
            # reward roles are brought in line here.
            await self.bot.rewards.sync_user(member.id)
        return receipt

    @staticmethod
    def _summary(receipt: CorrectionReceipt) -> str:
        return f"now {receipt.total_xp:,} XP, level {receipt.level}"

    @app_commands.command(name="addxp", description="Give a member XP (recorded with you as the actor).")
    @app_commands.describe(
        member="Who gets the XP", amount="How much XP", reason="Why (kept in the XP ledger)"
    )
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    async def addxp(
        self,
        interaction: discord.Interaction,
        member: discord.Member,
        amount: app_commands.Range[int, 1, 1_000_000],
        reason: Reason,
    ) -> None:
        receipt = await self._correct(
            interaction, member, "service_role_admin_adjust_xp", create=True, amount=amount, reason=reason
        )
        await reply(
            interaction, f"Added {receipt.granted:,} XP to {member.mention} ({self._summary(receipt)})."
        )

    @app_commands.command(name="removexp", description="Take XP from a member (never below zero).")
    @app_commands.describe(member="Whose XP", amount="How much XP", reason="Why (kept in the XP ledger)")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    async def removexp(
        self,
        interaction: discord.Interaction,
        member: discord.Member,
        amount: app_commands.Range[int, 1, 1_000_000],
        reason: Reason,
    ) -> None:
        receipt = await self._correct(
            interaction, member, "service_role_admin_adjust_xp", create=False, amount=-amount, reason=reason
        )
        await reply(
            interaction,
            f"Removed {-receipt.granted:,} XP from {member.mention} ({self._summary(receipt)}).",
        )

    @app_commands.command(name="setlevel", description="Put a member at the start of a level.")
    @app_commands.describe(member="Whose level", level="The level", reason="Why (kept in the XP ledger)")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    async def setlevel(
        self,
        interaction: discord.Interaction,
        member: discord.Member,
        level: app_commands.Range[int, 1, 10_000],
        reason: Reason,
    ) -> None:
        receipt = await self._correct(
            interaction, member, "service_role_admin_set_level", create=True, level=level, reason=reason
        )
        await reply(interaction, f"{member.mention} is at level {receipt.level} ({self._summary(receipt)}).")

    @app_commands.command(name="resetxp", description="Bring a member's XP to zero (points are kept).")
    @app_commands.describe(member="Whose XP", reason="Why (kept in the XP ledger)")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    async def resetxp(self, interaction: discord.Interaction, member: discord.Member, reason: Reason) -> None:
        receipt = await self._correct(
            interaction, member, "service_role_admin_reset_xp", create=False, reason=reason
        )
        await reply(interaction, f"Reset {member.mention}'s XP ({self._summary(receipt)}).")

    # Statistics and roles -----------------------------------------------------------------

    @app_commands.command(name="botstats", description="How the bot and the XP engine are doing.")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    async def botstats(self, interaction: discord.Interaction) -> None:
        assert interaction.guild is not None
        await defer(interaction, ephemeral=True)
        started = time.perf_counter()
        stats: DiscordStats = await self.bot.rpc.call(
            "service_role_discord_stats", guild_id=str(interaction.guild.id)
        )
        database_ms = (time.perf_counter() - started) * 1000
        embed = discord.Embed(title="Bot statistics", colour=discord.Colour.blurple())
        embed.add_field(name="Servers", value=f"{len(self.bot.guilds):,}")
        embed.add_field(name="Up since", value=discord.utils.format_dt(self.bot.started_at, "R"))
        latency = self.bot.latency
        embed.add_field(
            name="Gateway latency",
            value=f"{latency * 1000:.0f} ms" if latency == latency and latency != float("inf") else "n/a",
        )
        embed.add_field(name="Database", value=f"{self.bot.rpc.transport}, {database_ms:.0f} ms")
        embed.add_field(name="Profiles", value=f"{stats.profiles:,} ({stats.discord_profiles:,} on Discord)")
        embed.add_field(name="XP in total", value=f"{stats.total_xp:,}")
        none = ActivityToday(awards=0, xp=0)
        embed.add_field(
            name="Today (UTC)",
            value="\n".join(
                f"{label}: {stats.today.get(key, none).awards:,} awards, {stats.today.get(key, none).xp:,} XP"
                for key, label in (
                    ("message", "Messages"),
                    ("voice_minute", "Voice minutes"),
                    ("command", "Commands"),
                )
            ),
            inline=False,
        )
        await reply(interaction, embed=embed)

    @app_commands.command(
        name="resyncroles", description="Give every member exactly the reward roles they earned."
    )
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.checks.bot_has_permissions(manage_roles=True)
    async def resyncroles(self, interaction: discord.Interaction) -> None:
        guild = interaction.guild
        assert guild is not None
        await defer(interaction, ephemeral=True)
        if not guild.chunked:
            await guild.chunk()
        result = await self.bot.rewards.sync_roles(guild, guild.members)
        text = (
            f"Checked {result.members:,} members: added {result.added:,} and removed {result.removed:,}"
            " reward roles."
        )
        if result.failed:
            text += (
                f" {result.failed:,} changes failed: move my role above the reward roles and give me "
                "Manage Roles."
            )
        await reply(interaction, text)

    # /xpconfig ---------------------------------------------------------------------------

    async def _configure(
        self, interaction: discord.Interaction, function: str, *, saved: bool = True, **params: Any
    ) -> None:
        assert interaction.guild is not None
        await defer(interaction, ephemeral=True)
        config: GuildConfig = await self.bot.rpc.call(function, guild_id=str(interaction.guild.id), **params)
        await reply(interaction, "Saved." if saved else None, embed=_describe_config(config))

    @config.command(name="show", description="Show this server's XP settings.")
    async def config_show(self, interaction: discord.Interaction) -> None:
        await self._configure(interaction, "service_role_discord_guild", saved=False)

    @config.command(name="announcements", description="Where level-ups are announced.")
    @app_commands.describe(
        mode="channel: one channel; current: where the XP was earned; dm; off",
        channel="The announcement channel (needed for mode channel)",
    )
    async def config_announcements(
        self, interaction: discord.Interaction, mode: AnnounceMode, channel: discord.TextChannel | None = None
    ) -> None:
        await self._configure(
            interaction,
            "service_role_discord_set_announcements",
            mode=mode,
            channel_id=str(channel.id) if channel else None,
        )

    @config.command(
        name="no-xp-channel", description="Turn XP off (or back on) in a channel and its threads."
    )
    @app_commands.describe(channel="The channel", no_xp="True: no XP there; False: XP again")
    async def config_no_xp_channel(
        self, interaction: discord.Interaction, channel: XPChannel, no_xp: bool = True
    ) -> None:
        await self._configure(
            interaction,
            "service_role_discord_set_no_xp",
            kind="channel",
            target_id=str(channel.id),
            no_xp=no_xp,
        )

    @config.command(name="no-xp-role", description="Members with this role earn no XP (or do again).")
    @app_commands.describe(role="The role", no_xp="True: no XP for it; False: XP again")
    async def config_no_xp_role(
        self, interaction: discord.Interaction, role: discord.Role, no_xp: bool = True
    ) -> None:
        await self._configure(
            interaction, "service_role_discord_set_no_xp", kind="role", target_id=str(role.id), no_xp=no_xp
        )

    @config.command(
        name="multiplier-role", description="Multiply the XP of members with a role (0 removes it)."
    )
    @app_commands.describe(role="The role", factor="e.g. 1.5 for +50%; 0 removes the multiplier")
    async def config_multiplier_role(
        self,
        interaction: discord.Interaction,
        role: discord.Role,
        factor: app_commands.Range[float, 0.0, 100.0],
    ) -> None:
        await self._configure(
            interaction,
            "service_role_discord_set_multiplier",
            kind="role",
            target_id=str(role.id),
            factor=factor or None,
        )

    @config.command(
        name="multiplier-channel", description="Multiply the XP earned in a channel (0 removes it)."
    )
    @app_commands.describe(channel="The channel", factor="e.g. 2 for double XP; 0 removes the multiplier")
    async def config_multiplier_channel(
        self,
        interaction: discord.Interaction,
        channel: XPChannel,
        factor: app_commands.Range[float, 0.0, 100.0],
    ) -> None:
        await self._configure(
            interaction,
            "service_role_discord_set_multiplier",
            kind="channel",
            target_id=str(channel.id),
            factor=factor or None,
        )

    @config.command(name="reward-level", description="Give a role to members from a level on.")
    @app_commands.describe(role="The reward role (below my own role)", level="The level that earns it")
    async def config_reward_level(
        self, interaction: discord.Interaction, role: discord.Role, level: app_commands.Range[int, 1, 10_000]
    ) -> None:
        self._check_reward_role(interaction, role)
        await self._configure(
            interaction, "service_role_discord_set_role_reward", role_id=str(role.id), min_level=level
        )

    @config.command(name="reward-tier", description="Give a role to members from a tier on.")
    @app_commands.describe(role="The reward role (below my own role)", tier="The tier that earns it")
    async def config_reward_tier(
        self, interaction: discord.Interaction, role: discord.Role, tier: str
    ) -> None:
        self._check_reward_role(interaction, role)
        await self._configure(
            interaction, "service_role_discord_set_role_reward", role_id=str(role.id), tier=tier
        )

    @config_reward_tier.autocomplete("tier")
    async def _tier_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        guide = await self.bot.level_guide()
        return [
            app_commands.Choice(name=f"{t.name} (from level {t.min_level})", value=t.slug)
            for t in guide.tiers
            if current.lower() in t.name.lower()
        ][:25]

    @config.command(name="reward-remove", description="Stop giving a role as a reward (members keep it).")
    @app_commands.describe(role="The reward role")
    async def config_reward_remove(self, interaction: discord.Interaction, role: discord.Role) -> None:
        await self._configure(interaction, "service_role_discord_set_role_reward", role_id=str(role.id))

    @staticmethod
    def _check_reward_role(interaction: discord.Interaction, role: discord.Role) -> None:
        if role.is_default() or role.managed:
            raise Refusal(f"{role.name} cannot be a reward: it is managed by Discord or an integration.")
        me = interaction.guild.me if interaction.guild else None
        if me is not None and role >= me.top_role:
            raise Refusal(f"I cannot give {role.name}: move my role above it first.")


async def setup(bot: XPBot) -> None:
    await bot.add_cog(Admin(bot))
