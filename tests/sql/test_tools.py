"""Tools: the catalogue, has_tool's three sources, admin unlocks with an audit trail, tool_unlocked once."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from tests.helpers import acting_as_custom_role, award, new_profile
from xpbase.db import Database, member_claims
from xpbase.errors import DomainError
from xpbase.models.tools import MyTools, Tool, ToolCatalogue, ToolUnlock


async def people(db: Database) -> dict[str, UUID]:
    ids = {name: await new_profile(db, name.title()) for name in ("admin", "member", "other")}
    async with db.as_service() as conn:
        await conn.execute("update public.profiles set role = 'admin' where id = $1", ids["admin"])
    return ids


async def as_admin(db: Database, admin: UUID, function: str, **params: Any) -> Any:
    return await db.rpc(function, role="authenticated", claims=member_claims(admin), **params)


async def has_tool(db: Database, pid: UUID, tool: str) -> bool:
    return bool(await db.rpc("has_tool", role="authenticated", claims=member_claims(pid), tool=tool))


async def tool_notes(db: Database, pid: UUID) -> list[dict[str, Any]]:
    rows = await db.pool.fetch(
        "select data from public.notifications where profile_id = $1 and kind = 'tool_unlocked' order by id",
        pid,
    )
    return [row["data"] for row in rows]


async def test_catalogue_holds_every_tier_unlock_and_admin_tools(db: Database) -> None:
    """Seeded tier unlocks are catalogued by tier; an admin's tool joins them; inactive ones are hidden."""
    ids = await people(db)
    catalogue = ToolCatalogue.model_validate(await db.rpc("tool_catalogue", role="anon"))
    by_slug = {t.slug: t for t in catalogue.root}
    assert len(by_slug) == await db.pool.fetchval("select count(distinct slug) from public.tier_unlocks")
    assert [t.tier for t in by_slug["store_access"].tiers] == ["member"]
    assert catalogue.root[0].tiers[0].tier == "basic"
    saved = Tool.model_validate(
        await as_admin(db, ids["admin"], "admin_save_tool", slug="ai_assistant", name="AI assistant")
    )
    assert (saved.tiers, saved.store_items, saved.active) == ([], [], True)
    catalogue = ToolCatalogue.model_validate(await db.rpc("tool_catalogue", role="anon"))
    assert catalogue.root[-1].slug == "ai_assistant"
    await as_admin(db, ids["admin"], "admin_save_tool", slug="ai_assistant", name="AI", active=False)
    assert "ai_assistant" not in {
        t.slug for t in ToolCatalogue.model_validate(await db.rpc("tool_catalogue")).root
    }
    everything = ToolCatalogue.model_validate(await db.rpc("tool_catalogue", include_inactive=True))
    assert {t.slug: t.name for t in everything.root}["ai_assistant"] == "AI"


async def test_only_tool_managers_save_and_unlock(db: Database) -> None:
    """Members may not save, unlock or revoke tools (42501), and bad input is refused with XPBAD."""
    ids = await people(db)
    for function, params in (
        ("admin_save_tool", {"slug": "x_ray", "name": "X"}),
        ("admin_unlock_tool", {"profile_id": ids["other"], "tool": "polls", "reason": "why not"}),
        ("admin_revoke_tool", {"profile_id": ids["other"], "tool": "polls", "reason": "why not"}),
    ):
        with pytest.raises(DomainError) as refused:
            await as_admin(db, ids["member"], function, **params)
        assert refused.value.code == "forbidden"
    for params in (
        {"slug": "Bad Slug", "name": "X"},
        {"slug": "ok", "name": " "},
        {"slug": "ok", "name": "x" * 101},
    ):
        with pytest.raises(DomainError) as bad:
            await as_admin(db, ids["admin"], "admin_save_tool", **params)
        assert bad.value.code == "invalid_argument"
    with pytest.raises(DomainError) as unknown:
        await as_admin(
            db, ids["admin"], "admin_unlock_tool", profile_id=ids["member"], tool="nope", reason="r"
        )
    assert unknown.value.code == "unknown_tool"
    with pytest.raises(DomainError) as no_reason:
        await as_admin(
            db, ids["admin"], "admin_unlock_tool", profile_id=ids["member"], tool="polls", reason=""
        )
    assert no_reason.value.code == "invalid_argument"
    assert await db.pool.fetchval("select count(*) from public.tool_unlocks") == 0


async def test_tier_access_follows_the_level_and_notifies_each_new_tool_once(db: Database) -> None:
    """Reaching Member gives its four tools (one tool_unlocked each); a tool already held is not announced."""
    ids = await people(db)
    pid = ids["member"]
    assert await has_tool(db, pid, "rank_card")
    assert not await has_tool(db, pid, "store_access")
    await as_admin(
        db, ids["admin"], "admin_unlock_tool", profile_id=pid, tool="event_signup", reason="helper"
    )
    assert [n["tool"] for n in await tool_notes(db, pid)] == ["event_signup"]
    await award(db, pid, "xp_purchase", "a", amount=10_500)
    assert await has_tool(db, pid, "store_access")
    notes = await tool_notes(db, pid)
    assert sorted(n["tool"] for n in notes[1:]) == [
        "custom_rank_card",
        "store_access",
        "streak_freeze_purchase",
    ]
    assert {n["how"]["source"] for n in notes[1:]} == {"tier"}
    await award(db, pid, "xp_purchase", "b", amount=10)  # no new tier: nothing more
    assert len(await tool_notes(db, pid)) == 4
    mine = {t.slug: t for t in MyTools.model_validate(await db.rpc("my_tools", profile_id=pid)).root}
    assert [s.source for s in mine["event_signup"].sources] == ["tier", "admin"]
    assert "resume_review" not in mine


async def test_store_purchase_grants_access_and_notifies(db: Database) -> None:
    """A tool item bought in the store gives the tool (source store) with one tool_unlocked."""
    ids = await people(db)
    pid = ids["member"]
    await db.rpc(
        "admin_save_store_item",
        item={
            "slug": "ai_tool",
            "name": "AI tool",
            "category": "tool",
            "price_points": 5,
            "tool_slug": "ai_help",
        },
    )
    assert "ai_help" in {t.slug for t in ToolCatalogue.model_validate(await db.rpc("tool_catalogue")).root}
    assert not await has_tool(db, pid, "ai_help")
    await db.rpc("admin_adjust_points", profile_id=pid, amount=10, reason="test", idempotency_key="p")
    await db.rpc(
        "buy_item", role="authenticated", claims=member_claims(pid), item="ai_tool", idempotency_key="k"
    )
    assert await has_tool(db, pid, "ai_help")
    assert [(n["tool"], n["how"]) for n in await tool_notes(db, pid)] == [
        ("ai_help", {"source": "store", "item": "ai_tool"})
    ]
    mine = {t.slug: t for t in MyTools.model_validate(await db.rpc("my_tools", profile_id=pid)).root}
    assert mine["ai_help"].sources[0].source == "store"


async def test_admin_unlock_is_audited_idempotent_and_revocable(db: Database) -> None:
    """An unlock records who and why; unlocking again answers it; revoking stamps it and ends access."""
    ids = await people(db)
    pid = ids["member"]
    first = ToolUnlock.model_validate(
        await as_admin(
            db, ids["admin"], "admin_unlock_tool", profile_id=pid, tool="polls", reason="Moderator"
        )
    )
    assert (first.unlocked_by, first.reason, first.has_tool, first.revoked_at) == (
        ids["admin"],
        "Moderator",
        True,
        None,
    )
    again = ToolUnlock.model_validate(
        await as_admin(db, ids["admin"], "admin_unlock_tool", profile_id=pid, tool="polls", reason="twice")
    )
    assert again == first
    assert len(await tool_notes(db, pid)) == 1
    revoked = ToolUnlock.model_validate(
        await as_admin(db, ids["admin"], "admin_revoke_tool", profile_id=pid, tool="polls", reason="misused")
    )
    assert (revoked.id, revoked.revoked_by, revoked.revoke_reason, revoked.has_tool) == (
        first.id,
        ids["admin"],
        "misused",
        False,
    )
    assert revoked.revoked_at is not None
    assert not await has_tool(db, pid, "polls")
    with pytest.raises(DomainError) as none_left:
        await as_admin(db, ids["admin"], "admin_revoke_tool", profile_id=pid, tool="polls", reason="again")
    assert none_left.value.code == "tool_unlock_not_found"
    # Unlocked again: a new audit row, and a new notification (access is newly gained again).
    await db.rpc("admin_unlock_tool", profile_id=pid, tool="polls", reason="backend")
    rows = await db.pool.fetch("select unlocked_by, revoked_at from public.tool_unlocks order by id")
    assert [(r["unlocked_by"], r["revoked_at"] is None) for r in rows] == [
        (ids["admin"], False),
        (None, True),
    ]
    assert len(await tool_notes(db, pid)) == 2
    # A member reads their own unlocks (RLS), not another member's.
    async with db.as_member(ids["other"]) as conn:
        assert await conn.fetchval("select count(*) from public.tool_unlocks") == 0
    async with db.as_member(pid) as conn:
        assert await conn.fetchval("select count(*) from public.tool_unlocks") == 2


async def test_inactive_tools_grant_nobody_and_has_tool_checks_the_caller(db: Database) -> None:
    """An inactive tool is held by no one; members ask only about themselves; anon may not ask."""
    ids = await people(db)
    await as_admin(db, ids["admin"], "admin_save_tool", slug="rank_card", name="Rank card", active=False)
    assert not await has_tool(db, ids["member"], "rank_card")
    assert not await has_tool(db, ids["member"], "no_such_tool")
    with pytest.raises(DomainError) as other:
        await db.rpc(
            "has_tool",
            role="authenticated",
            claims=member_claims(ids["member"]),
            tool="x",
            profile_id=ids["other"],
        )
    assert other.value.code == "forbidden"
    with pytest.raises(DomainError) as anon:
        await db.rpc("my_tools", role="anon")
    assert anon.value.code == "forbidden"


async def test_a_member_whose_role_claim_is_a_custom_role_sees_their_own_tools(db: Database) -> None:
    """A signed-in member is auth.uid(), whatever their role claim says, as in the rest of the API
    (points_statement here): has_tool and my_tools answer as they do for role authenticated."""
    pid = await new_profile(db, "Custom")
    await award(db, pid, "xp_purchase", "a", amount=10_500)
    async with acting_as_custom_role(db, pid) as conn:
        assert await conn.fetchval("select public.points_statement() ->> 'profile_id'") == str(pid)
        assert await conn.fetchval("select public.has_tool('store_access')") is True
        mine = await conn.fetchval("select public.my_tools()")
    assert mine == await db.rpc("my_tools", role="authenticated", claims=member_claims(pid))
    assert {t["slug"] for t in mine} >= {"store_access"}
