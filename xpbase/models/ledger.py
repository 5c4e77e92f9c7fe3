"""A member's ledger, newest first, paged by cursor (supabase/sql/68_ledger_reads.sql)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from xpbase.models import Result


class LedgerEntry(Result):
    """One ledger row: XP (negative for penalties and corrections), points, when, by whom, and its receipt.

    ``receipt`` is what the call that wrote the row answered (an award,
    check-in, correction or season-reward receipt), stored as it was given.
    """

    id: int
    activity: str
    activity_name: str
    layer: str
    season_id: int | None
    amount: int
    season_amount: int
    points: int
    occurred_at: datetime
    recorded_at: datetime
    actor_role: str
    reason: str | None
    reverses_id: int | None
    #: a correction written when a late award decided this award again: the award row it corrects
    corrects_id: int | None
    receipt: dict[str, Any]


class LedgerPage(Result):
    """A page of ledger entries; ``next_cursor`` fetches the next (older) page, null on the last."""

    items: list[LedgerEntry]
    next_cursor: str | None


RESULTS = {"list_my_ledger": LedgerPage}
