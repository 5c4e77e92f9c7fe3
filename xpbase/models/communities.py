"""Discord communities (issue 17): importers, per-server boards, a member's export and erasure
(supabase/sql/92_imports.sql, 93_guild_boards.sql, 94_member_data.sql).

XP is whole numbers; Discord ids are text of digits; times are UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from xpbase.models import Result
from xpbase.models.leaderboards import LeaderboardEntry

ImportStatus = Literal["imported", "unchanged", "zero", "conflict", "rejected"]


class ImportedMember(Result):
    """What an import did (or, in a dry run, would do) for one member: ``status`` imported (a ledger row of
    ``xp_granted`` XP), unchanged (imported before with the same figures), zero (0 XP: membership only),
    conflict (imported before with other figures: nothing written; ``reason`` says which) or rejected
    (``reason``); XP and level before, and the level after."""

    user_id: str
    status: ImportStatus
    reason: str | None
    new_profile: bool
    xp_before: int
    level_before: int
    xp_granted: int
    level: int


class ImportBatch(Result):
    """``admin_import_members``: one batch; ``counts`` is members per status."""

    source: Literal["mee6", "amari", "polaris", "levelup", "csv"]
    guild_id: str
    keep: Literal["xp", "level"]
    dry_run: bool
    counts: dict[ImportStatus, int]
    members: list[ImportedMember]


class ImportedRoleReward(Result):
    """A level role copied into the server's role rewards (added), or left as configured (kept)."""

    role_id: str
    min_level: int
    status: Literal["added", "kept"]


class RoleRewardImport(Result):
    """``admin_import_role_rewards``."""

    guild_id: str
    dry_run: bool
    rewards: list[ImportedRoleReward]


class RoleResync(Result):
    """A server whose reward roles must be resynced (queued by an import)."""

    guild_id: str
    requested_at: datetime


class RoleResyncs(Result):
    """``service_role_discord_take_role_resyncs``: the servers taken from the queue, oldest first."""

    resyncs: list[RoleResync]


class GuildRank(Result):
    """``service_role_discord_guild_rank``: a user's place among one server's visible members (``rank`` null
    when not a recorded member or hidden; ``total`` visible members)."""

    guild_id: str
    user_id: str
    profile_id: UUID
    member: bool
    rank: int | None
    total: int
    xp: int
    level: int
    tier: str | None


class ExportLayer(Result):
    layer: str
    xp: int
    status: str


class ExportSeason(Result):
    season_id: int
    xp: int


class ExportIdentity(Result):
    provider: str
    subject: str
    created_at: str


class ExportLedgerRow(Result):
    id: int
    activity: str
    layer: str
    season_id: int | None
    amount: int
    season_amount: int
    points: int
    occurred_at: str
    idempotency_key: str
    reason: str | None


class ExportChatMessage(Result):
    id: int
    body: str
    created_at: str


class MemberExport(Result):
    """``my_export``: everything held about the caller (``profile`` is the row, every column, as JSON)."""

    exported_at: str
    profile: dict[str, Any]
    erased_at: str | None
    identities: list[ExportIdentity]
    layers: list[ExportLayer]
    seasons: list[ExportSeason]
    servers: list[str]
    ledger: list[ExportLedgerRow]
    chat_messages: list[ExportChatMessage]


class ErasureRemoved(Result):
    identities: int = 0
    sessions: int = 0
    push_devices: int = 0
    notifications: int = 0
    chat_messages: int = 0


class Erasure(Result):
    """``erase_me`` / ``admin_erase_profile``: ``erased`` false when the profile was erased before."""

    profile_id: UUID
    erased: bool
    removed: ErasureRemoved


class RankCardChoice(Result):
    """``service_role_discord_rank_card`` / ``service_role_discord_set_rank_card``: the accent and background
    a holder of the Custom rank card unlock chose (both None: none chosen, or the unlock no longer held)."""

    accent: Literal["ember", "gold", "neon", "rose", "ocean", "violet"] | None
    background: Literal["slate", "night", "forest", "wine", "ocean"] | None


RESULTS = {
    "admin_import_members": ImportBatch,
    "admin_import_role_rewards": RoleRewardImport,
    "service_role_discord_take_role_resyncs": RoleResyncs,
    "service_role_discord_guild_rank": GuildRank,
    "guild_leaderboard": LeaderboardEntry,
    "my_export": MemberExport,
    "erase_me": Erasure,
    "admin_erase_profile": Erasure,
    "service_role_discord_rank_card": RankCardChoice,
    "service_role_discord_set_rank_card": RankCardChoice,
}
