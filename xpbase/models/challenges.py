"""Result models of challenges: the catalogue, judged completions, a member's progress and the loader's
batch save (issue 15; rules: supabase/sql/39_challenges.sql).

Times are UTC ISO 8601 text as the functions write them; XP is whole points of XP.
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import RootModel

from xpbase.models import Result

Difficulty = Literal["easy", "medium", "hard", "expert"]


class Challenge(Result):
    """One active challenge: what it asks, its XP, prerequisites (slugs), window and whether open now."""

    slug: str
    title: str
    description: str
    difficulty: Difficulty
    layer: str
    xp: int
    prerequisites: list[str]
    starts_at: str | None
    ends_at: str | None
    open: bool


class ChallengeCatalogue(RootModel[list[Challenge]]):
    """challenge_catalogue: by position, then slug."""


class Completion(Result):
    """A judged completion: the XP granted once and its ledger row; replayed when it was recorded before."""

    id: int
    challenge: str
    title: str
    profile_id: UUID
    completed_at: str
    judge: str
    submission: str | None
    granted: int
    ledger_id: int | None
    replayed: bool


class ChallengeProgress(Result):
    """One challenge as a member stands with it."""

    slug: str
    title: str
    difficulty: Difficulty
    layer: str
    xp: int
    status: Literal["completed", "locked", "closed", "open"]
    completed_at: str | None
    granted: int | None
    missing_prerequisites: list[str]


class MyChallenges(Result):
    """my_challenges: counts, XP earned by completions, and every challenge's status."""

    profile_id: UUID
    completed: int
    total: int
    xp_earned: int
    challenges: list[ChallengeProgress]


class SaveSummary(Result):
    """admin_save_challenges: challenges created, updated and unchanged by one batch; total catalogued."""

    created: int
    updated: int
    unchanged: int
    total: int


RESULTS = {
    "challenge_catalogue": ChallengeCatalogue,
    "service_role_complete_challenge": Completion,
    "my_challenges": MyChallenges,
    "admin_save_challenges": SaveSummary,
}
