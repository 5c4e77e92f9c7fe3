"""What a rule change would move, and did (supabase/sql/47_rule_changes.sql).

``admin_rules_diff`` answers it as a dry run (``dry_run`` true, nothing kept); ``admin_rules_apply`` after
writing the change and its corrections (``rule_change_id`` names the public.rule_changes row). Amounts in XP.
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from xpbase.models import Result


class RewardRole(Result):
    """A Discord reward role (public.discord_role_rewards) of a server the member belongs to."""

    guild_id: str
    role_id: str


class MemberChange(Result):
    """One member the change moves: total XP, level and tier before and after, how many of their awards get a
    correction, and the reward roles they would gain or lose (by level or tier)."""

    profile_id: UUID
    display_name: str
    xp_before: int
    xp: int
    xp_delta: int
    level_before: int
    level: int
    tier_before: str | None
    tier: str | None
    awards_changed: int
    reward_roles_gained: list[RewardRole]
    reward_roles_lost: list[RewardRole]


class RuleChangeProgress(Result):
    """How far a rule change has got, from the detail of the NOTICEs it raises while it runs
    (private.rules_walk, private.rules_change_run): ``walk``, ledger rows decided again; ``corrections``,
    members whose corrections were played (diff) or written (apply). ``done`` of ``total``, counts."""

    step: Literal["walk", "corrections"]
    done: int
    total: int


class RuleChangeOutcome(Result):
    """Counts over every member (``members_changed``: XP, level or tier moves, or an award is corrected) and
    the ``members`` with the largest changes first, at most the call's ``limit`` of them."""

    dry_run: bool
    rule_change_id: int | None
    awards_changed: int
    members_changed: int
    members_gaining: int
    members_losing: int
    xp_delta: int
    levels_changed: int
    tiers_changed: int
    reward_roles_changed: int
    members: list[MemberChange]


RESULTS = {
    "admin_rules_diff": RuleChangeOutcome,
    "admin_rules_apply": RuleChangeOutcome,
}
