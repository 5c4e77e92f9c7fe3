"""Result models of member claims and point values (issue 15; rules: supabase/sql/36_claims.sql).

Times are UTC ISO 8601 text as the functions write them; XP is whole points of XP.
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import RootModel

from xpbase.models import Result

ClaimStatus = Literal["pending", "approved", "rejected"]


class Claim(Result):
    """One claim: what was claimed, evidence, and the review (granted XP and ledger row once approved)."""

    id: int
    profile_id: UUID
    display_name: str
    activity: str
    activity_name: str
    category: str | None
    note: str
    evidence_url: str | None
    occurred_at: str
    status: ClaimStatus
    reviewer_id: UUID | None
    reviewed_at: str | None
    reason: str | None
    granted: int | None
    ledger_id: int | None
    created_at: str


class ClaimList(RootModel[list[Claim]]):
    """my_claims (newest first) and claim_queue (pending oldest first)."""


class PointValue(Result):
    """One active activity: what it earns (base_xp now, or a min_xp..max_xp range) and how it is claimed."""

    slug: str
    name: str
    description: str
    layer: str
    category: str | None
    category_name: str | None
    base_xp: int
    min_xp: int | None
    max_xp: int | None
    cooldown_seconds: int
    claimable: bool
    requires_review: bool
    claim_limit: int | None
    claim_window_seconds: int


class PointValues(RootModel[list[PointValue]]):
    """point_values: every active activity by category."""


RESULTS = {
    "submit_claim": Claim,
    "review_claim": Claim,
    "my_claims": ClaimList,
    "claim_queue": ClaimList,
    "point_values": PointValues,
}
