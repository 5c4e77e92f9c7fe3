"""The Discord bot's reads (supabase/sql/90_discord_guilds.sql, 91_discord_members.sql).

Discord ids (guilds, users, channels, roles) are snowflakes as text of
digits; XP and points are whole numbers; times are aware UTC datetimes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import Field

from xpbase.models import Result
from xpbase.models.engine import AwardReceipt, Unlock
from xpbase.models.seasons import SeasonInfo


class GuildMultiplier(Result):
    """An XP multiplier of a guild's role or channel (a public.multipliers row) for every activity."""

    kind: Literal["role", "channel"]
    target_id: str
    factor: float


class RoleReward(Result):
    """A role earned at a level (``min_level``) or with a tier (``tier``); ``level`` is where it is earned."""

    role_id: str
    min_level: int | None
    tier: str | None
    tier_name: str | None
    level: int


class GuildConfig(Result):
    """A guild's bot configuration (the defaults for a guild never configured).

    ``announce_mode``: level-ups go to ``announce_channel_id`` (channel), to
    the channel the XP was earned in (current; ``announce_channel_id`` for
    XP earned elsewhere), by direct message (dm), or nowhere (off).
    """

    guild_id: str
    announce_mode: Literal["channel", "current", "dm", "off"]
    announce_channel_id: str | None
    no_xp_channels: list[str]
    no_xp_roles: list[str]
    multipliers: list[GuildMultiplier]
    role_rewards: list[RoleReward]


class DiscordAwardReceipt(AwardReceipt):
    """Passive XP that went through award_xp: its receipt (``granted`` may be 0 under a cooldown or cap)."""

    skipped: None


class DiscordAwardSkipped(Result):
    """Passive XP refused before award_xp: the channel or one of the member's roles earns no XP."""

    granted: Literal[0]
    skipped: Literal["no_xp_channel", "no_xp_role"]
    activity: str
    idempotency_key: str
    profile_id: None
    replayed: Literal[False]


DiscordAward = DiscordAwardReceipt | DiscordAwardSkipped
"""service_role_discord_award's answer: a receipt, or skipped (told apart by ``skipped``)."""


class MemberLayer(Result):
    """A member's XP in one layer and their status there (slug and name)."""

    layer: str
    name: str
    xp: int
    status: str | None
    status_name: str | None


class RecentEntry(Result):
    """A recent non-zero ledger entry: the activity (slug and name), layer, XP, when, and the reason."""

    activity: str
    activity_name: str
    layer: str | None
    amount: int
    occurred_at: datetime
    reason: str | None


class DiscordMember(Result):
    """The profile of a Discord user for /rank, /xp and /profile.

    ``rank_card_style`` is the card style bought in the store (None: the default);
    ``level_xp`` is the total XP where the level starts, ``next_level_xp``
    where the next one starts (None at the top of the curve); ``identities``
    the providers linked; ``recent`` the newest entries first.
    """

    profile_id: UUID
    display_name: str
    bio: str | None
    avatar_url: str | None
    social_links: dict[str, Any]
    role: Literal["member", "admin"]
    leaderboard_visible: bool
    created_at: datetime
    xp: int
    level: int
    tier: str | None
    tier_name: str | None
    points: int
    rank_card_style: str | None
    level_xp: int
    next_level_xp: int | None
    layers: list[MemberLayer]
    unlocks: list[Unlock]
    identities: list[str]
    recent: list[RecentEntry]


class PlannedMember(Result):
    """The reward roles one member should hold (users without a profile are planned at level 1)."""

    user_id: str
    profile_id: UUID | None
    level: int
    tier: str | None
    roles: list[str]


class RolePlan(Result):
    """``managed``: every reward role of the guild; ``members``: what each asked-about member should hold."""

    managed: list[str]
    members: list[PlannedMember]


class LevelUpData(Result):
    """A level_up notification's data: the levels before and after, the total XP, the ledger row."""

    level_before: int
    level: int
    total_xp: int
    ledger_id: int | None
    """The award's first ledger row (None only for a change without one)."""


class TierUpData(Result):
    """A tier_up notification's data: the tiers before and after, the new tier's name and unlocks."""

    tier_before: str | None
    tier: str
    tier_name: str
    unlocks: list[Unlock]
    ledger_id: int | None


class _Announcement(Result):
    id: int
    profile_id: UUID
    user_id: str
    """The member's Discord user id."""
    title: str
    body: str | None
    created_at: datetime
    idempotency_key: str | None
    """The key of the award that caused it (the bot skips its own)."""


class LevelUp(_Announcement):
    """A level-up to announce."""

    kind: Literal["level_up"]
    data: LevelUpData


class TierUp(_Announcement):
    """A tier-up to announce."""

    kind: Literal["tier_up"]
    data: TierUpData


Announcement = Annotated[LevelUp | TierUp, Field(discriminator="kind")]


class DiscordNotifications(Result):
    """Level-ups and tier-ups of Discord members after a cursor, and the cursor past everything looked at."""

    cursor: int
    notifications: list[Announcement]


class ActivityToday(Result):
    """Awards of one activity since 00:00 UTC: how many credited XP, and how much XP."""

    awards: int
    xp: int


class DiscordStats(Result):
    """Numbers for /botstats; ``today`` is keyed by activity (message, voice_minute, command; absent: 0)."""

    profiles: int
    discord_profiles: int
    total_xp: int
    today: dict[str, ActivityToday]
    guild: GuildConfig


RESULTS = {
    "service_role_discord_guild": GuildConfig,
    "service_role_discord_set_announcements": GuildConfig,
    "service_role_discord_set_no_xp": GuildConfig,
    "service_role_discord_set_multiplier": GuildConfig,
    "service_role_discord_set_role_reward": GuildConfig,
    "service_role_discord_award": DiscordAward,
    "service_role_discord_member": DiscordMember,
    "service_role_discord_seasons": SeasonInfo,
    "service_role_discord_role_plan": RolePlan,
    "service_role_discord_notifications": DiscordNotifications,
    "service_role_discord_stats": DiscordStats,
}
