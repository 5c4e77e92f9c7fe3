"""Badges (supabase/sql/33_badges.sql): the catalogue, a member's badges, a retroactive evaluation's progress.

Times are aware UTC datetimes; thresholds are in the unit of the badge's kind (XP, a level, a count of
awards, days, a rank, a subject's sum).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from xpbase.models import Result

BadgeLevel = Literal["bronze", "silver", "gold"]


class EvaluationProgress(Result):
    """The latest retroactive evaluation of a badge, as the catalogue shows it."""

    revision: int
    status: Literal["queued", "running", "done"]
    profiles_done: int
    profiles_total: int | None
    awarded: int


class CatalogueBadge(Result):
    """One active badge: its rule in brief, how many members (that the caller may see) hold it."""

    slug: str
    name: str
    description: str
    level: BadgeLevel
    series: str | None
    kind: str
    threshold: int
    once_per: Literal["member", "subject"]
    holders: int
    evaluation: EvaluationProgress | None


class BadgeCatalogue(Result):
    """``public.badge_catalogue()``: every active badge in display order."""

    badges: list[CatalogueBadge]


class HeldBadge(Result):
    """A badge a member holds; ``times`` counts subjects for once-per-subject badges (else 1)."""

    slug: str
    name: str
    description: str
    level: BadgeLevel
    series: str | None
    times: int
    first_awarded_at: datetime
    last_awarded_at: datetime
    subjects: list[str]
    """The latest 10 subjects it was earned for (empty for once-per-member badges)."""


class BadgeCounts(Result):
    """Badges held per level (a once-per-subject badge counts once per subject)."""

    bronze: int
    silver: int
    gold: int


class ProfileBadges(Result):
    """``public.profile_badges(profile_id)``: a member's badges, newest first."""

    profile_id: UUID
    counts: BadgeCounts
    badges: list[HeldBadge]


class BadgeEvaluation(Result):
    """``public.service_role_evaluate_badge``: the evaluation row after one step."""

    id: int
    badge_slug: str
    revision: int
    status: Literal["queued", "running", "done"]
    profiles_total: int | None
    profiles_done: int
    awarded: int
    cursor: UUID | None
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


RESULTS = {
    "badge_catalogue": BadgeCatalogue,
    "profile_badges": ProfileBadges,
    "service_role_evaluate_badge": BadgeEvaluation,
}
