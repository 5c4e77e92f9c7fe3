"""Level-up and tier-up announcements, and reward roles kept in step with the database.

Two sources drive them:

- award receipts of what the bot itself did (a message, a voice minute, a
  check-in, an admin's correction): announced at once, in the channel where
  it happened when the guild announces in the "current" channel;
- the notifications stream (``level_up`` and ``tier_up`` rows written by the
  engine for XP from any source: the web, the service, an importer), read by
  the relay cog (bot/cogs/relay.py).

Each level-up is announced once: the bot remembers the idempotency keys of its
own awards (before it makes them), and the relay skips notifications caused
by those keys. Which roles a member should hold is asked of the database
(``service_role_discord_role_plan``); the bot adds the missing reward roles
and removes reward roles the member no longer qualifies for, in every guild
the bot shares with the member.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import discord

from xpbase.models.discord import (
    Announcement,
    DiscordAwardSkipped,
    GuildConfig,
    LevelUp,
    RolePlan,
)
from xpbase.models.engine import AwardReceipt

if TYPE_CHECKING:
    from bot.bot import XPBot

log = logging.getLogger(__name__)

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
        """Worth announcing: a higher level or a new tier (a loss only changes roles)."""
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
class RoleSync:
    """What a role sync did: members looked at, roles added and removed, changes Discord refused."""

    members: int = 0
    added: int = 0
    removed: int = 0
    failed: int = 0


Receipt = AwardReceipt | DiscordAwardSkipped
"""What the bot's own awards answer: award_xp's receipt (corrections, check-ins and passive XP extend it),
or passive XP skipped in a no-XP channel or role."""


def change_from_receipt(receipt: Receipt) -> LevelChange | None:
    """The level/tier change an award or correction receipt reports, or None when nothing changed.

    Whether a tier was reached, and its name, are the engine's (``tier_up`` and ``tier_name`` of the
    receipt, decided in private.apply_xp like its ``tier_up`` notification).
    """
    if isinstance(receipt, DiscordAwardSkipped) or receipt.replayed:
        return None
    if receipt.level == receipt.level_before and not receipt.tier_up:
        return None
    tier_name = (receipt.tier_name or receipt.tier) if receipt.tier_up else None
    return LevelChange(receipt.level_before, receipt.level, tier_name, [u.name for u in receipt.unlocks])


def changes_from_notifications(notifications: Iterable[Announcement]) -> dict[tuple[str, int], LevelChange]:
    """Level-up and tier-up notifications merged per (Discord user id, ledger row) into one change each."""
    merged: dict[tuple[str, int], LevelChange] = {}
    for note in notifications:
        key = (note.user_id, note.data.ledger_id if note.data.ledger_id is not None else -note.id)
        change = merged.setdefault(key, LevelChange(0, 0))
        if isinstance(note, LevelUp):
            change.level_before, change.level = note.data.level_before, note.data.level
        else:
            change.tier_name = note.data.tier_name
            change.unlocks = [u.name for u in note.data.unlocks]
    return merged


class Rewards:
    """Announcements and reward roles for one bot."""

    OWN_KEYS_KEPT = 20_000

    def __init__(self, bot: XPBot) -> None:
        self.bot = bot
        self._own_keys: OrderedDict[str, None] = OrderedDict()

    # Which level-ups the bot announces itself --------------------------------

    def expect(self, idempotency_key: str) -> None:
        """Remember a key the bot is about to award under: the relay will not announce its level-ups twice."""
        self._own_keys[idempotency_key] = None
        self._own_keys.move_to_end(idempotency_key)
        while len(self._own_keys) > self.OWN_KEYS_KEPT:
            self._own_keys.popitem(last=False)

    def is_own(self, idempotency_key: str | None) -> bool:
        """Whether the bot awarded under this key itself (among the last 20,000 keys it made)."""
        return idempotency_key is not None and idempotency_key in self._own_keys

    # Receipts and notifications ------------------------------------------------

    async def on_receipt(
        self, receipt: Receipt, member: discord.Member, channel: discord.abc.Messageable | None = None
    ) -> LevelChange | None:
        """Handle a receipt of the bot's own award or correction: reward roles in every shared guild, and an
        announcement in the member's guild (``channel``: where the XP was earned). Returns the change."""
        self.expect(receipt.idempotency_key)
        change = change_from_receipt(receipt)
        if change is None:
            return None
        await self.sync_user(member.id)
        if change.is_up:
            await self.announce(member, change, channel)
        return change

    async def on_notifications(self, notifications: Sequence[Announcement]) -> int:
        """Handle level-up/tier-up notifications from the stream; returns how many changes were announced
        or applied. Notifications caused by the bot's own awards are skipped (already handled)."""
        foreign = [n for n in notifications if not self.is_own(n.idempotency_key)]
        handled = 0
        synced: set[int] = set()
        for (user_id, _ledger), change in changes_from_notifications(foreign).items():
            uid = int(user_id)
            if uid not in synced:
                await self.sync_user(uid)
                synced.add(uid)
            for guild in self.bot.guilds:
                member = guild.get_member(uid)
                if member is not None and change.is_up:
                    await self.announce(member, change, None)
            handled += 1
        return handled

    # Announcements ---------------------------------------------------------------

    async def announce(
        self, member: discord.Member, change: LevelChange, channel: discord.abc.Messageable | None
    ) -> discord.Message | None:
        """Post ``change`` where the member's guild wants it (``service_role_discord_guild``): its
        announcement channel, the current ``channel`` (or the announcement channel when there is none),
        a DM, or nowhere. Returns the message sent, or None."""
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
