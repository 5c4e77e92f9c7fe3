"""The level guide: the curve, tiers and what they unlock, layers and their statuses (public.level_guide)."""

from __future__ import annotations

from xpbase.models import Result


class CurvePoint(Result):
    """A level and the total XP at which it starts."""

    level: int
    xp_required: int


class TierUnlock(Result):
    """Something a tier unlocks for good."""

    slug: str
    name: str
    description: str


class Tier(Result):
    """A tier: levels min_level..max_level, reached at xp_required XP, and what it unlocks."""

    slug: str
    name: str
    min_level: int
    max_level: int
    xp_required: int
    unlocks: list[TierUnlock]


class LayerStatus(Result):
    """A status in a layer's ladder, held from min_xp layer XP."""

    slug: str
    name: str
    min_xp: int


class Layer(Result):
    """A layer (reality, cyber ...) and its status ladder."""

    slug: str
    name: str
    description: str
    statuses: list[LayerStatus]


class LevelGuide(Result):
    """The whole guide. Public data; changes only when an admin edits the configuration."""

    max_level: int
    levels: list[CurvePoint]
    tiers: list[Tier]
    layers: list[Layer]


RESULTS = {"level_guide": LevelGuide}
