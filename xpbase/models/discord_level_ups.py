"""The Discord bot's queue of level-ups (supabase/sql/91_discord_members.sql, private.discord_level_ups).

A level_up or tier_up notification of a member with a Discord identity is
queued for the bot in the notification's own transaction; the bot claims
queued rows, applies reward roles, posts the announcement and finishes them.
Discord ids are snowflakes as text of digits; times are aware UTC datetimes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from xpbase.models import Result
from xpbase.models.discord import LevelUpData, TierUpData


class _QueuedLevelUp(Result):
    notification_id: int
    ledger_id: int | None
    """The award's first ledger row: a level_up and a tier_up of one award share it (None without one)."""
    user_id: str
    """The member's Discord user id."""
    guild_id: str | None
    """The guild the XP was earned in; None when it was earned outside Discord (the web, a correction)."""
    channel_id: str | None
    """The channel it was earned in (a thread counts as its parent), for guilds announcing in "current"."""
    attempts: int
    """Claims so far, this one included (above 1: an earlier claim's lease ran out unfinished)."""
    created_at: datetime


class QueuedLevelUp(_QueuedLevelUp):
    """A level-up to act on."""

    kind: Literal["level_up"]
    data: LevelUpData


class QueuedTierUp(_QueuedLevelUp):
    """A tier-up to act on."""

    kind: Literal["tier_up"]
    data: TierUpData


QueuedChange = Annotated[QueuedLevelUp | QueuedTierUp, Field(discriminator="kind")]


class LevelUpClaim(Result):
    """service_role_claim_discord_level_ups: the queued level-ups and tier-ups the bot now holds."""

    level_ups: list[QueuedChange]


RESULTS = {
    "service_role_claim_discord_level_ups": LevelUpClaim,
}
