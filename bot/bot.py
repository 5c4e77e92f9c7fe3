"""The bot: a ``commands.Bot`` that holds the database interface and loads the cogs.

Every rule (who earns how much XP, cooldowns, caps, levels, tiers, reward
roles, who may correct XP) is a database function; the bot reports what
happened in Discord and applies what the database decided. The launcher
(bot/launcher.py) creates the database interface and passes it in.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import TYPE_CHECKING, Any, cast

import discord
from discord import app_commands
from discord.ext import commands

from bot import replies
from xpbase.group_commit import AwardGroupCommit
from xpbase.models.discord import DiscordAward, DiscordMember
from xpbase.models.levels import LevelGuide
from xpbase.rpc import RPC
from xpbase.settings import Settings

if TYPE_CHECKING:
    from bot.cogs.rewards import Rewards

log = logging.getLogger(__name__)

# Voice XP needs only voice *states* (who sits in which channel, the voice_states intent); the bot never
# joins a voice channel, so it needs neither PyNaCl (audio encryption) nor davey (DAVE, Discord's end-to-end
# encryption of voice calls) and declares neither. discord.py logs "PyNaCl is not installed, voice will NOT
# be supported" and "davey is not installed, voice will NOT be supported" at every start otherwise, which
# reads as if voice XP did not work: both warnings are switched off here, with this reason.
discord.VoiceClient.warn_nacl = False
discord.VoiceClient.warn_dave = False

GUIDE_TTL_SECONDS = 300.0
EXTENSIONS = (
    "bot.cogs.members",
    "bot.cogs.admin",
    "bot.cogs.passive",
    "bot.cogs.rewards",
    "bot.cogs.deliveries",
    "bot.cogs.economy",
    "bot.cogs.reviews",
    "bot.cogs.claims",
    "bot.cogs.badges",
    "bot.cogs.tools",
    "bot.cogs.moderation",
    "bot.cogs.servers",
    "bot.cogs.imports",
)


def intents() -> discord.Intents:
    """Message content (to skip empty and emoji-only messages), members (role rewards, role multipliers)
    and voice states (voice minutes), on top of the defaults."""
    wanted = discord.Intents.default()
    wanted.message_content = True
    wanted.members = True
    wanted.voice_states = True
    return wanted


def channel_for_xp(channel: Any) -> int | None:
    """The channel id an award is attributed to (no-XP channels, channel multipliers): a thread counts as
    its parent channel."""
    if isinstance(channel, discord.Thread):
        return channel.parent_id
    return getattr(channel, "id", None)


def role_ids(member: discord.Member | discord.User) -> list[str]:
    """The member's role ids as text, without @everyone."""
    return [str(role.id) for role in getattr(member, "roles", ()) if not role.is_default()]


class XPCommandTree(app_commands.CommandTree):
    """The slash-command tree; one error handler answers every failed command ephemerally."""

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        name = interaction.command.qualified_name if interaction.command else "?"
        if replies.is_expected(original):
            log.info("/%s refused: %s", name, original)
        else:
            log.error("/%s failed", name, exc_info=original)
        await replies.reply_error(interaction, original)


class XPBot(commands.Bot):
    """The xpbase Discord bot: slash commands, passive XP and role rewards.

    ``rpc`` is the database interface (xpbase.rpc, asyncpg or PostgREST);
    ``settings`` the process settings (the test guild for command sync).
    ``awards`` is the group commit passive XP goes through (xpbase.group_commit, on ``rpc``), or None when
    ``settings.award_group_commit`` is off.
    """

    def __init__(self, *, rpc: RPC, settings: Settings, **options: Any) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents(),
            tree_cls=XPCommandTree,
            allowed_mentions=discord.AllowedMentions(
                everyone=False, roles=False, users=True, replied_user=False
            ),
            help_command=None,
            **options,
        )
        self.rpc = rpc
        self.settings = settings
        self.awards = AwardGroupCommit.from_settings(rpc, settings) if settings.award_group_commit else None
        self.started_at = discord.utils.utcnow()
        self._guide: tuple[float, LevelGuide] | None = None

    async def setup_hook(self) -> None:
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        if self.settings.discord_test_guild:
            guild = discord.Object(id=self.settings.discord_test_guild)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("synced %d commands to the test guild %s", len(synced), guild.id)

    @property
    def rewards(self) -> Rewards:
        """The Rewards cog (bot/cogs/rewards.py): reward roles and announcements, which other cogs ask to
        resync roles. RuntimeError before the cogs are loaded."""
        cog = self.get_cog("Rewards")
        if cog is None:
            raise RuntimeError("the rewards cog is not loaded")
        return cast("Rewards", cog)

    async def close(self) -> None:
        """Stop the bot; the awards still waiting for their group are sent first."""
        if self.awards is not None:
            await self.awards.aclose()
        await super().close()

    async def sync_global_commands(self) -> int:
        """Publish the slash commands to every guild (takes up to an hour to show); returns how many."""
        return len(await self.tree.sync())

    async def on_ready(self) -> None:
        log.info(
            "ready as %s in %d guild(s), database over %s", self.user, len(self.guilds), self.rpc.transport
        )

    # Database calls the cogs share -------------------------------------------

    async def ensure_profile(self, user: discord.abc.User) -> str:
        """The profile id (uuid text) of a Discord user, created on first sight with their display name."""
        profile_id: str = await self.rpc.call(
            "ensure_profile", provider="discord", subject=str(user.id), display_name=user.display_name
        )
        return profile_id

    async def level_guide(self) -> LevelGuide:
        """``public.level_guide()`` (curve, tiers, layers), kept for GUIDE_TTL_SECONDS (5 minutes): it
        changes rarely, and autocomplete asks on every keystroke."""
        if self._guide is None or time.monotonic() - self._guide[0] > GUIDE_TTL_SECONDS:
            guide: LevelGuide = await self.rpc.call("level_guide")
            self._guide = (time.monotonic(), guide)
        return self._guide[1]

    async def member_profile(
        self, user: discord.abc.User, *, recent: int = 0, viewer: discord.abc.User | None = None
    ) -> DiscordMember:
        """``service_role_discord_member``: the user's profile, layers, unlocks and ``recent`` ledger
        entries, as ``viewer`` may see it (None: the member themself or the backend). Raises DomainError
        XPPRF when the user has no profile, XPHID when the viewer is someone else who may not see the user's
        profile card (a private profile or one hidden from leaderboards, unless the viewer is a moderator or
        admin; a members profile, unless the viewer has a profile)."""
        profile: DiscordMember = await self.rpc.call(
            "service_role_discord_member",
            user_id=str(user.id),
            recent=recent,
            viewer_user_id=None if viewer is None else str(viewer.id),
        )
        return profile

    async def award(
        self,
        member: discord.Member,
        activity: str,
        idempotency_key: str,
        *,
        occurred_at: dt.datetime,
        channel: Any = None,
    ) -> DiscordAward:
        """Passive XP through ``service_role_discord_award`` (no-XP channels and roles, then award_xp):
        the receipt (DiscordAwardReceipt: ``granted`` XP, ``cooldown_remaining_seconds``, levels...) or
        DiscordAwardSkipped (a no-XP channel or role). Sent through the group commit (``awards``) when it
        is on: the same answer and errors, given after the group's transaction committed."""
        channel_id = channel_for_xp(channel)
        params: dict[str, Any] = {
            "guild_id": str(member.guild.id),
            "user_id": str(member.id),
            "display_name": member.display_name,
            "activity": activity,
            "idempotency_key": idempotency_key,
            "occurred_at": occurred_at,
            "channel_id": str(channel_id) if channel_id is not None else None,
            "role_ids": role_ids(member),
        }
        if self.awards is not None:
            return await self.awards.discord_award(**params)
        receipt: DiscordAward = await self.rpc.call("service_role_discord_award", **params)
        return receipt
