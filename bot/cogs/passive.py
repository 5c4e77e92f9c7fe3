"""Passive XP: messages, minutes in voice, and member commands.

The bot only reports what happened; ``service_role_discord_award`` decides:
no-XP channels and roles of the guild, then award_xp's multipliers (role and
channel), cooldown (``message``: one credited message per 60 s, counted on
the message's own timestamp, so a restart neither resets nor doubles it) and
the daily cap. Idempotency keys are Discord's own ids, so a gateway replay or
a restart never credits twice:

- ``discord:message:<message id>``
- ``discord:voice:<guild id>:<member id>:<minute since the epoch>``
- ``discord:command:<interaction id>``
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import discord
import emoji
from discord import app_commands
from discord.ext import commands, tasks

from xpbase.errors import DomainError
from xpbase.models.discord import DiscordAward, DiscordAwardReceipt
from xpbase.rpc import RPCError

if TYPE_CHECKING:
    from bot.bot import XPBot

log = logging.getLogger(__name__)

CUSTOM_EMOJI = re.compile(r"<a?:[A-Za-z0-9_~]{1,32}:[0-9]{1,20}>")
_INVISIBLE = dict.fromkeys(map(ord, "\ufe0f\ufe0e\u200d\u200b\u2060"), None)
XP_MESSAGE_TYPES = (discord.MessageType.default, discord.MessageType.reply)
VOICE_CONCURRENCY = 8
"""Voice minute awards in flight at once without the group commit (each its own transaction)."""


def has_words(content: str) -> bool:
    """Whether a message has something besides whitespace and emoji (Unicode emoji, including skin tones and
    joined sequences, and Discord's custom ``<:name:id>`` emoji)."""
    text = emoji.replace_emoji(CUSTOM_EMOJI.sub("", content), replace="").translate(_INVISIBLE)
    return any(not ch.isspace() for ch in text)


def earns_message_xp(message: discord.Message) -> bool:
    """Whether a message is one a member earns XP for, before asking the database: in a guild, by a human
    member (not a bot or webhook), an ordinary message or reply, with words in it."""
    return (
        message.guild is not None
        and isinstance(message.author, discord.Member)
        and not message.author.bot
        and message.webhook_id is None
        and message.type in XP_MESSAGE_TYPES
        and has_words(message.content)
    )


def voice_earners(
    guild: discord.Guild,
) -> list[tuple[discord.Member, discord.VoiceChannel | discord.StageChannel]]:
    """Members who earn this minute's ``voice_minute``: in a voice or stage channel other than the guild's
    AFK channel, with at least one other human (bots do not count) in it, and neither muted nor deafened
    (by themselves or by the server) nor suppressed (a stage's audience)."""
    afk_id = guild.afk_channel.id if guild.afk_channel else None
    earners = []
    for channel in [*guild.voice_channels, *guild.stage_channels]:
        if channel.id == afk_id:
            continue
        humans = [m for m in channel.members if not m.bot]
        if len(humans) < 2:
            continue
        for member in humans:
            state = member.voice
            if (
                state is None
                or state.self_mute
                or state.self_deaf
                or state.mute
                or state.deaf
                or state.suppress
            ):
                continue
            earners.append((member, channel))
    return earners


class CooldownHints:
    """What the database said about message cooldowns, to avoid asking again while the answer stands.

    When a message is refused for its cooldown, the receipt tells how long the cooldown still runs; messages
    of the same member written within that window would be refused too, so the bot does not send them. The
    window kept is one second shorter than reported (the database rounds up). This only saves calls: the
    database decides every award, and a restart (which forgets the hints) changes nothing.
    """

    def __init__(self, max_members: int = 50_000) -> None:
        self.max_members = max_members
        self._windows: OrderedDict[int, tuple[dt.datetime, dt.datetime]] = OrderedDict()

    def holds(self, user_id: int, at: dt.datetime) -> bool:
        """Whether a message of ``user_id`` written at ``at`` falls inside a known cooldown."""
        window = self._windows.get(user_id)
        return window is not None and window[0] <= at < window[1]

    def note(self, user_id: int, at: dt.datetime, remaining: int) -> None:
        """Learn that a message written at ``at`` was refused with ``remaining`` seconds of cooldown left
        (0: it was not refused for its cooldown)."""
        if remaining > 1:
            self._windows[user_id] = (at, at + dt.timedelta(seconds=remaining - 1))
            self._windows.move_to_end(user_id)
            while len(self._windows) > self.max_members:
                self._windows.popitem(last=False)


class PassiveXP(commands.Cog):
    """XP for taking part: messages, minutes in voice with others, and member commands."""

    def __init__(self, bot: XPBot) -> None:
        self.bot = bot
        self.cooldowns = CooldownHints()

    async def cog_load(self) -> None:
        self.voice_minutes.start()

    async def cog_unload(self) -> None:
        self.voice_minutes.cancel()

    async def _award(
        self, member: discord.Member, activity: str, key: str, occurred_at: dt.datetime, channel: Any
    ) -> DiscordAward | None:
        try:
            receipt = await self.bot.award(member, activity, key, occurred_at=occurred_at, channel=channel)
        except DomainError as exc:
            # The same key with other parameters: the member's roles changed since the first delivery.
            # The key was used, so nothing more is owed.
            if exc.error.sqlstate != "XPIDM":
                log.warning("%s award %s refused: %s", activity, key, exc)
            return None
        except RPCError as exc:
            log.warning("%s award %s failed: %s", activity, key, exc)
            return None
        return receipt

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> DiscordAward | None:
        """Award ``message`` XP (see the module docstring); the receipt, or None when nothing was asked."""
        if not earns_message_xp(message):
            return None
        author = message.author
        assert isinstance(author, discord.Member)
        if self.cooldowns.holds(author.id, message.created_at):
            return None
        receipt = await self._award(
            author, "message", f"discord:message:{message.id}", message.created_at, message.channel
        )
        if isinstance(receipt, DiscordAwardReceipt) and receipt.cooldown:
            self.cooldowns.note(author.id, message.created_at, receipt.cooldown_remaining_seconds)
        return receipt

    @tasks.loop(minutes=1)
    async def voice_minutes(self) -> None:
        """Every minute: ``award_voice_minute`` for the current UTC minute."""
        await self.award_voice_minute(discord.utils.utcnow())

    @voice_minutes.before_loop
    async def _wait_until_ready(self) -> None:
        await self.bot.wait_until_ready()

    @voice_minutes.error
    async def _voice_minutes_error(self, error: BaseException) -> None:  # type: ignore[override]
        log.exception("the voice minute ticker failed", exc_info=error)

    async def award_voice_minute(self, now: dt.datetime) -> list[DiscordAward]:
        """Award ``voice_minute`` for the minute that contains ``now`` (UTC) to every member who earns it in
        every guild; returns the receipts. Called by the minute ticker; a second call for the same minute
        credits nothing."""
        minute = now.astimezone(dt.UTC).replace(second=0, microsecond=0)
        stamp = int(minute.timestamp()) // 60
        # Through the group commit a whole group's worth of awards may wait at once (they make one call).
        awards = self.bot.awards
        limit = asyncio.Semaphore(awards.max_batch if awards is not None else VOICE_CONCURRENCY)

        async def one(member: discord.Member, channel: Any) -> DiscordAward | None:
            async with limit:
                key = f"discord:voice:{member.guild.id}:{member.id}:{stamp}"
                return await self._award(member, "voice_minute", key, minute, channel)

        jobs = [one(m, c) for guild in self.bot.guilds for m, c in voice_earners(guild)]
        return [r for r in await asyncio.gather(*jobs) if r is not None]

    @commands.Cog.listener()
    async def on_app_command_completion(
        self,
        interaction: discord.Interaction,
        command: app_commands.Command[Any, Any, Any] | app_commands.ContextMenu,
    ) -> DiscordAward | None:
        """Award ``command`` XP for a member command that completed in a guild (its 30 s cooldown is the
        database's)."""
        cog = getattr(command, "binding", None)
        user = interaction.user
        if (
            getattr(cog, "qualified_name", None) != "Members"
            or not isinstance(user, discord.Member)
            or user.bot
        ):
            return None
        return await self._award(
            user, "command", f"discord:command:{interaction.id}", interaction.created_at, interaction.channel
        )


async def setup(bot: XPBot) -> None:
    await bot.add_cog(PassiveXP(bot))
