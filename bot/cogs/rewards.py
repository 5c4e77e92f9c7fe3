"""Reward roles and level-up announcements, fed by one source: the database's queue of level-ups.

Every ``level_up`` and ``tier_up`` notification of a member with a Discord
identity is queued for the bot in the notification's own transaction
(``private.discord_level_ups``, supabase/sql/91_discord_members.sql), with the
guild and channel the XP was earned in when the bot awarded it. It makes no
difference where the XP came from (a message, a voice minute, /checkin, an
admin's /addxp, the web, the service): this cog claims queued level-ups with
``service_role_claim_discord_level_ups`` (held for a lease, ``for update skip
locked``: two bots never take the same one), brings the member's reward roles
in line in every guild it shares with them, posts the announcement, and
finishes them with ``service_role_finish_discord_level_ups``. A level-up is
acted on once; only a bot that dies between claiming and finishing leaves it to
be claimed again when the lease ends (so an announcement may then repeat).

It is woken by ``pg_notify`` on ``xpbase_discord_level_ups`` over asyncpg
(and looks every minute in case a wake-up was lost); over PostgREST it polls
every 10 s. Level-ups queued while the bot was offline are acted on when it
starts: their roles are applied, but only those less than an hour old are
announced. Losing levels writes no notification: the admin commands that take
XP away bring that member's roles in line themselves (bot/cogs/admin.py), and
``/resyncroles`` does a whole server.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from xpbase.errors import DomainError
from xpbase.models.discord import GuildConfig, RolePlan
from xpbase.models.discord_level_ups import LevelUpClaim, QueuedChange, QueuedLevelUp
from xpbase.rpc import Listener, RPCError

if TYPE_CHECKING:
    from bot.bot import XPBot

log = logging.getLogger(__name__)

CHANNEL = "xpbase_discord_level_ups"
BATCH = 20
LEASE_SECONDS = 300  # a batch may wait on Discord's rate limits (role edits, messages)
POLL_SECONDS_LISTENING = 60.0
POLL_SECONDS_POLLING = 10.0
ANNOUNCE_WITHIN = dt.timedelta(hours=1)  # older level-ups (the bot was offline) get their roles, no message
ROLE_PLAN_CHUNK = 1000  # service_role_discord_role_plan takes at most 1000 user ids


@dataclass
class LevelChange:
    """One announcement: ``level_before`` -> ``level``; ``tier_name`` and ``unlocks`` (tool names) when the
    change reached a new tier."""

    level_before: int
    level: int
    tier_name: str | None = None
    unlocks: list[str] = field(default_factory=list)

    @property
    def is_up(self) -> bool:
        """Worth announcing: a higher level or a new tier."""
        return self.level > self.level_before or self.tier_name is not None

    def text(self, mention: str, guild_name: str | None = None) -> str:
        """The announcement, e.g. "🎉 @Ada reached **level 11**! ⭐ New tier: **Member**, unlocking ..."."""
        where = f" in **{guild_name}**" if guild_name else ""
        lines = []
        if self.level > self.level_before:
            lines.append(f"🎉 {mention} reached **level {self.level}**{where}!")
        if self.tier_name:
            unlocked = f", unlocking {', '.join(self.unlocks)}" if self.unlocks else ""
            lines.append(f"⭐ {mention} is now in the **{self.tier_name}** tier{unlocked}.")
        return "\n".join(lines)


@dataclass
class QueuedAward:
    """The queued level-up and tier-up of one award, merged: who, where it was earned, when, what changed."""

    user_id: int
    guild_id: int | None
    channel_id: int | None
    created_at: dt.datetime
    change: LevelChange


@dataclass
class RoleSync:
    """What a role sync did: members looked at, roles added and removed, changes Discord refused."""

    members: int = 0
    added: int = 0
    removed: int = 0
    failed: int = 0


def awards_from_queue(level_ups: Iterable[QueuedChange]) -> list[QueuedAward]:
    """Claimed level-ups and tier-ups merged per award (their shared ledger row) into one change each, in
    queue order. A tier-up alone (its level-up was finished earlier) keeps its level unchanged."""
    merged: dict[tuple[str, int], QueuedAward] = {}
    for item in level_ups:
        key = (item.user_id, item.ledger_id if item.ledger_id is not None else -item.notification_id)
        award = merged.get(key)
        if award is None:
            award = merged[key] = QueuedAward(
                int(item.user_id),
                int(item.guild_id) if item.guild_id else None,
                int(item.channel_id) if item.channel_id else None,
                item.created_at,
                LevelChange(0, 0),
            )
        if isinstance(item, QueuedLevelUp):
            award.change.level_before, award.change.level = item.data.level_before, item.data.level
        else:
            award.change.tier_name = item.data.tier_name
            award.change.unlocks = [u.name for u in item.data.unlocks]
    return list(merged.values())


class Rewards(commands.Cog):
    """Reward roles and announcements for every level-up of a Discord member, from the level-up queue."""

    def __init__(self, bot: XPBot) -> None:
        self.bot = bot
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: Listener | None = None

    async def cog_load(self) -> None:
        self._task = asyncio.create_task(self._run(), name="xpbase-rewards")

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

    # The queue ---------------------------------------------------------------------

    async def start(self) -> None:
        """Listen for wake-ups when the transport can (on a new connection after a database restart)."""
        if self._listener is not None and not self._listener.alive:
            await self._stop_listening()
        if self._listener is None:
            self._listener = await self.bot.rpc.listen(CHANNEL, lambda _payload: self._wake.set())

    async def process(self) -> int:
        """Claim, act on and finish every queued level-up; returns how many awards were acted on (an award's
        level-up and tier-up count once). Raises RPCError/DomainError when the database fails: what was
        claimed and not finished is claimed again after LEASE_SECONDS."""
        handled = 0
        while True:
            claim: LevelUpClaim = await self.bot.rpc.call(
                "service_role_claim_discord_level_ups", max_rows=BATCH, lease_seconds=LEASE_SECONDS
            )
            if not claim.level_ups:
                return handled
            handled += await self.apply(awards_from_queue(claim.level_ups))
            await self.bot.rpc.call(
                "service_role_finish_discord_level_ups",
                notification_ids=[item.notification_id for item in claim.level_ups],
            )

    async def apply(self, awards: Sequence[QueuedAward]) -> int:
        """Reward roles of each member in every guild the bot shares with them (once per member), then the
        announcements: in the guild the XP was earned in, or in every shared guild when it was earned outside
        Discord. Returns len(awards)."""
        synced: set[int] = set()
        now = discord.utils.utcnow()
        for award in awards:
            if award.user_id not in synced:
                await self.sync_user(award.user_id)
                synced.add(award.user_id)
            if not award.change.is_up or now - award.created_at > ANNOUNCE_WITHIN:
                continue
            if award.guild_id is not None:
                guild = self.bot.get_guild(award.guild_id)
                guilds = [guild] if guild is not None else []
            else:
                guilds = list(self.bot.guilds)
            for guild in guilds:
                member = guild.get_member(award.user_id)
                if member is None:
                    continue
                # Only a bot award has a channel, and then the only guild is the one it was earned in.
                channel = guild.get_channel_or_thread(award.channel_id) if award.channel_id else None
                await self.announce(member, award.change, channel)  # type: ignore[arg-type]
        return len(awards)

    async def _run(self) -> None:
        await self.bot.wait_until_ready()
        delay = 1.0
        while True:
            try:
                await self.start()
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
                log.warning("rewards: %s; retrying in %.0f s", exc, delay)
                await self._stop_listening()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)

    # Announcements ---------------------------------------------------------------

    async def announce(
        self, member: discord.Member, change: LevelChange, channel: discord.abc.Messageable | None
    ) -> discord.Message | None:
        """Post ``change`` where the member's guild wants it (``service_role_discord_guild``): its
        announcement channel, the ``channel`` the XP was earned in (the announcement channel when there is
        none), a DM, or nowhere. Returns the message sent, or None."""
        config: GuildConfig = await self.bot.rpc.call(
            "service_role_discord_guild", guild_id=str(member.guild.id)
        )
        mode = config.announce_mode
        configured = (
            member.guild.get_channel(int(config.announce_channel_id)) if config.announce_channel_id else None
        )
        target: discord.abc.Messageable | None
        text = change.text(member.mention)
        if mode == "off":
            return None
        if mode == "dm":
            target, text = member, change.text("You", member.guild.name)
        elif mode == "channel":
            target = configured  # type: ignore[assignment]
        else:
            target = channel or configured  # type: ignore[assignment]
        if target is None:
            return None
        try:
            return await target.send(text, allowed_mentions=discord.AllowedMentions(users=[member]))
        except discord.HTTPException as exc:
            log.warning("could not announce a level-up of %s in %s: %s", member.id, member.guild.id, exc)
            return None

    # Reward roles ----------------------------------------------------------------

    async def sync_user(self, user_id: int) -> RoleSync:
        """Bring one user's reward roles in line in every guild the bot shares with them."""
        total = RoleSync()
        for guild in self.bot.guilds:
            member = guild.get_member(user_id)
            if member is not None:
                result = await self.sync_roles(guild, [member])
                total.members += result.members
                total.added += result.added
                total.removed += result.removed
                total.failed += result.failed
        return total

    async def sync_roles(self, guild: discord.Guild, members: Sequence[discord.Member]) -> RoleSync:
        """Give each member the reward roles the database plans for them and take away the guild's other
        reward roles. Roles the bot may not assign (above its own top role, managed by an integration,
        deleted) are counted as failed, as are changes Discord refuses."""
        result = RoleSync()
        humans = [m for m in members if not m.bot]
        for start in range(0, len(humans), ROLE_PLAN_CHUNK):
            chunk = humans[start : start + ROLE_PLAN_CHUNK]
            plan: RolePlan = await self.bot.rpc.call(
                "service_role_discord_role_plan", guild_id=str(guild.id), user_ids=[str(m.id) for m in chunk]
            )
            managed = set(plan.managed)
            planned = {int(p.user_id): p for p in plan.members}
            if not managed:
                result.members += len(chunk)
                continue
            for member in chunk:
                result.members += 1
                entry = planned[member.id]
                should = set(entry.roles)
                has = {str(r.id) for r in member.roles}
                to_add, to_remove = should - has, (managed - should) & has
                if not to_add and not to_remove:
                    continue
                reason = f"xpbase role rewards: level {entry.level}"
                add = self._assignable(guild, to_add)
                remove = self._assignable(guild, to_remove)
                result.failed += len(to_add) - len(add) + len(to_remove) - len(remove)
                try:
                    if add:
                        await member.add_roles(*add, reason=reason)
                        result.added += len(add)
                    if remove:
                        await member.remove_roles(*remove, reason=reason)
                        result.removed += len(remove)
                except discord.HTTPException as exc:
                    log.warning("role rewards of %s in %s refused: %s", member.id, guild.id, exc)
                    result.failed += 1
        return result

    @staticmethod
    def _assignable(guild: discord.Guild, role_ids: Iterable[str]) -> list[discord.Role]:
        roles = []
        for role_id in sorted(role_ids, key=int):
            role = guild.get_role(int(role_id))
            if role is None or not role.is_assignable():
                log.warning(
                    "reward role %s of guild %s is missing or above the bot's role", role_id, guild.id
                )
                continue
            roles.append(role)
        return roles


async def setup(bot: XPBot) -> None:
    await bot.add_cog(Rewards(bot))
