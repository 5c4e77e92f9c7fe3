"""The award path's receipts: what award_xp and the admin corrections answer.

Amounts are XP (whole numbers; negative for penalties and corrections),
times are UTC. Source: supabase/sql/30_award.sql (``private.apply_xp``) and
35_admin.sql.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from xpbase.models import Result


class Cap(Result):
    """The daily cap the award counted against: its group, the cap (XP), the local day, used and remaining."""

    group: str
    daily_cap: int
    day: date
    used: int
    remaining: int


class AppliedMultiplier(Result):
    """A multiplier that applied: its kind (role, channel, event, ...), the value it matched, its factor."""

    kind: str
    match: str | None
    factor: float


class LayerPart(Result):
    """The part of an award that went to one layer, with that layer's and season's totals before and after."""

    layer: str
    amount: int
    xp_before: int
    xp: int
    status_before: str | None
    status: str | None
    season_id: int | None
    season_amount: int
    season_xp: int | None


class Unlock(Result):
    """A tier unlock: the tier it belongs to, its slug and name."""

    tier: str
    slug: str
    name: str


class Redecision(Result):
    """One later award a late award decided again (supabase/sql/34_redecisions.sql): its ledger row, and
    its net grant (XP) before and after. A correction row (corrects_id = ledger_id) holds the difference."""

    ledger_id: int
    activity: str
    occurred_at: datetime
    granted_before: int
    granted: int


class AwardReceipt(Result):
    """award_xp's receipt: ``granted`` is the XP actually credited (0 under a cooldown or cap).

    ``replayed`` is true when the idempotency key had been used: the first
    receipt comes back and nothing is credited again.
    """

    profile_id: UUID
    activity: str
    idempotency_key: str
    occurred_at: datetime
    granted: int
    base: int | None
    requested: int | None
    multiplier: float
    multipliers: list[AppliedMultiplier]
    cooldown: bool
    cooldown_remaining_seconds: int
    capped: bool
    cap: Cap | None
    floored: bool
    total_xp_before: int
    total_xp: int
    level_before: int
    level: int
    tier_before: str | None
    tier: str | None
    tier_up: bool
    tier_name: str | None
    points_granted: int
    points: int
    layers: list[LayerPart]
    layer: str | None
    layer_xp: int | None
    layer_status_before: str | None
    layer_status: str | None
    season_id: int | None
    season_xp: int | None
    unlocks: list[Unlock]
    #: occurred_at lies in a season already finalised: the award counts for all-time and layer XP, not
    #: for that closed season (receipts written before seasons closed lack the key).
    season_closed: bool = False
    #: the member already had an award dated after this one when it arrived (time, then idempotency key)
    late: bool = False
    #: late and dated more than engine_settings.late_award_horizon_seconds (48 h) before now: decided as of
    #: its arrival, and the later awards were not decided again
    beyond_horizon: bool = False
    #: the later awards this late one made the engine decide again (correction rows follow this award's row)
    redecided: list[Redecision] = Field(default_factory=list)
    ledger_id: int | None = None
    replayed: bool


class CorrectionReceipt(AwardReceipt):
    """An admin correction's receipt: an award receipt plus who corrected (actor) and which correction."""

    actor_id: UUID | None
    actor_role: str
    correction: Literal["admin_adjust_xp", "admin_set_level", "admin_reset_xp"]


class ReversalReceipt(AwardReceipt):
    """reverse_award's receipt: the reversal row's award receipt (``granted`` is negative for a reversed
    award), the row it reverses (``reverses_id``), who reversed it, and ``points_reversed``: the points the
    row had earned that were taken back (at most the balance; points already spent stay spent).

    Source: supabase/sql/31_reversals.sql.
    """

    actor_id: UUID | None
    actor_role: str
    correction: Literal["reverse_award"]
    reverses_id: int
    points_reversed: int


RESULTS = {
    "award_xp": AwardReceipt,
    "reverse_award": ReversalReceipt,
    "admin_adjust_xp": CorrectionReceipt,
    "admin_set_level": CorrectionReceipt,
    "admin_reset_xp": CorrectionReceipt,
    # the same corrections made by the backend for a named actor (the bot's /addxp ...; 90_discord_guilds.sql)
    "service_role_admin_adjust_xp": CorrectionReceipt,
    "service_role_admin_set_level": CorrectionReceipt,
    "service_role_admin_reset_xp": CorrectionReceipt,
}
