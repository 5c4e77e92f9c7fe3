"""Shared checks for the engine tests: configuration changes as service_role and the ledger invariant.

``cached_totals`` reads what the engine cached (profile, layers, season scores)
and ``ledger_totals`` derives the same shape from the ledger alone; the engine
is consistent when the two are equal.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from xpbase.db import Database

T0 = datetime(2025, 11, 21, 12, 0, tzinfo=UTC)  # a fixed past moment: awards may not lie in the future
"""A fixed moment in the middle of a UTC month and day; tests pass explicit occurred_at values around it."""


def level_threshold(level: int) -> int:
    """Total XP at which ``level`` starts on the default curve: 100·(L-1)² + 50·(L-1)."""
    return 100 * (level - 1) ** 2 + 50 * (level - 1)


def expected_level(xp: int) -> int:
    """The level the default curve gives for ``xp`` total XP (1-100)."""
    return max(level for level in range(1, 101) if level_threshold(level) <= max(xp, 0))


def expected_tier(level: int) -> str:
    """The default tier of a level: basic 1-10, member 11-25, advanced 26-50, elite 51-75, master 76-100."""
    for tier, top in (("basic", 10), ("member", 25), ("advanced", 50), ("elite", 75)):
        if level <= top:
            return tier
    return "master"


async def as_service(db: Database, sql: str, *args: Any) -> str:
    """Run one configuration statement as service_role and commit it."""
    async with db.as_service() as conn:
        return str(await conn.execute(sql, *args))


async def add_penalty_activity(
    db: Database, slug: str = "spam_penalty", xp: int = -50, layer: str = "cyber"
) -> str:
    """A fixed negative-XP activity (no cooldown, no cap group), added as service_role; returns its slug."""
    await as_service(
        db,
        "insert into public.activity_types (slug, name, layer_slug, base_xp) values ($1, 'Penalty', $2, $3) "
        "on conflict (slug) do nothing",
        slug,
        layer,
        xp,
    )
    return slug


async def cached_totals(db: Database, profile_id: UUID) -> dict[str, Any]:
    """What the engine cached for a profile: xp, points, level, tier, XP per layer and season (no zeros)."""
    async with db.pool.acquire() as conn:
        profile = await conn.fetchrow(
            "select xp, points, level, tier from public.profiles where id = $1", profile_id
        )
        layers = await conn.fetch(
            "select layer_slug, xp from public.profile_layers where profile_id = $1 and xp <> 0", profile_id
        )
        seasons = await conn.fetch(
            "select season_id, xp from public.season_scores where profile_id = $1 and xp <> 0", profile_id
        )
    return {
        "xp": profile["xp"],
        "points": profile["points"],
        "level": profile["level"],
        "tier": profile["tier"],
        "layers": {r["layer_slug"]: r["xp"] for r in layers},
        "seasons": {r["season_id"]: r["xp"] for r in seasons},
    }


async def ledger_totals(db: Database, profile_id: UUID) -> dict[str, Any]:
    """The same shape as cached_totals, derived from the ledger rows alone and the default curve and tiers.

    Profile and layer XP are sums of amount; a season score is the sum of the season's season_amount.
    """
    async with db.pool.acquire() as conn:
        rows = await conn.fetch(
            "select layer_slug, season_id, sum(amount)::bigint as xp, "
            "sum(season_amount)::bigint as season_xp, sum(points)::bigint as points "
            "from public.xp_ledger where profile_id = $1 group by layer_slug, season_id",
            profile_id,
        )
    xp = sum(r["xp"] for r in rows)
    layers: dict[str, int] = {}
    seasons: dict[int, int] = {}
    for r in rows:
        layers[r["layer_slug"]] = layers.get(r["layer_slug"], 0) + r["xp"]
        seasons[r["season_id"]] = seasons.get(r["season_id"], 0) + r["season_xp"]
    level = expected_level(xp)
    return {
        "xp": xp,
        "points": sum(r["points"] for r in rows),
        "level": level,
        "tier": expected_tier(level),
        "layers": {k: v for k, v in layers.items() if v != 0},
        "seasons": {k: v for k, v in seasons.items() if v > 0},
    }


async def ledger_rows(db: Database, profile_id: UUID | None = None) -> list[dict[str, Any]]:
    """Every ledger row (of one profile, or all), oldest first, as dicts."""
    async with db.pool.acquire() as conn:
        rows = await conn.fetch(
            "select * from public.xp_ledger where $1::uuid is null or profile_id = $1 order by id", profile_id
        )
    return [dict(r) for r in rows]
