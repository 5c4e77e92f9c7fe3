"""Result models of tools: the catalogue, a member's tools and admin unlocks (issue 15; rules:
supabase/sql/37_tools.sql).

Times are UTC ISO 8601 text as the functions write them; prices are points and paise.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, RootModel

from xpbase.models import Result


class ToolTier(Result):
    """A tier whose reaching unlocks the tool."""

    tier: str
    tier_name: str
    min_level: int


class ToolStoreItem(Result):
    """An active store item that sells the tool (prices in points and/or paise)."""

    item: str
    name: str
    price_points: int | None
    price_paise: int | None


class Tool(Result):
    """One catalogue tool and how it is obtained: tiers, store items, or an admin unlock (any tool)."""

    slug: str
    name: str
    description: str
    active: bool
    tiers: list[ToolTier]
    store_items: list[ToolStoreItem]


class ToolCatalogue(RootModel[list[Tool]]):
    """tool_catalogue: by lowest unlocking tier, then slug."""


class TierSource(Result):
    """Held because the member's level reaches this tier."""

    source: Literal["tier"]
    tier: str
    tier_name: str
    min_level: int


class StoreSource(Result):
    """Held because this store item is in the member's inventory."""

    source: Literal["store"]
    item: str
    item_name: str
    item_id: int
    quantity: int
    acquired_at: str


class AdminSource(Result):
    """Held because an admin unlocked it (unlocked_by null: the backend), with their reason."""

    source: Literal["admin"]
    unlock_id: int
    unlocked_by: UUID | None
    reason: str
    unlocked_at: str


ToolSource = Annotated[TierSource | StoreSource | AdminSource, Field(discriminator="source")]


class MyTool(Result):
    """A tool the member may use, with every way they hold it."""

    slug: str
    name: str
    description: str
    sources: list[ToolSource]


class MyTools(RootModel[list[MyTool]]):
    """my_tools: by slug."""


class ToolUnlock(Result):
    """One admin unlock (revoked_* once revoked) and whether the member holds the tool now, by any source."""

    id: int
    profile_id: UUID
    tool: str
    unlocked_by: UUID | None
    unlocked_by_role: str
    reason: str
    unlocked_at: str
    revoked_by: UUID | None
    revoke_reason: str | None
    revoked_at: str | None
    has_tool: bool


RESULTS = {
    "tool_catalogue": ToolCatalogue,
    "my_tools": MyTools,
    "admin_save_tool": Tool,
    "admin_unlock_tool": ToolUnlock,
    "admin_revoke_tool": ToolUnlock,
}
