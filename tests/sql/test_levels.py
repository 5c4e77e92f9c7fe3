"""Level curve and tiers: boundaries as properties, receipts that agree, level-up and tier-up notices."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import acting_as, award, new_profile
from tests.sql.engine import as_service, expected_level, expected_tier, level_threshold
from xpbase.db import Database

PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
"""One database per property test (the db fixture), reused by every example; no time limit per example."""

MEMBER_TOOLS = ["Custom rank card", "Event sign-up", "Store", "Streak freezes"]
ADVANCED_TOOLS = ["Resume review", "Project showcase", "Voice rooms", "Polls"]


async def sql(db: Database, query: str, *args: Any) -> Any:
    """One value, read as anon (the curve functions are public)."""
    async with db.as_anon() as conn:
        return await conn.fetchval(query, *args)


async def profile_row(db: Database, profile_id: UUID) -> dict[str, Any]:
    """The member's cached xp, level and tier (read as the owner of the tables)."""
    row = await db.pool.fetchrow("select xp, level, tier from public.profiles where id = $1", profile_id)
    return dict(row)


async def notifications(db: Database, profile_id: UUID) -> list[dict[str, Any]]:
    """The member's level, tier and layer notifications, oldest first, read as the member through RLS.

    The default badges (First steps, Level 10, ...) notify too; tests/sql/test_badges.py covers those.
    """
    async with acting_as(db, "authenticated", profile_id) as conn:
        rows = await conn.fetch(
            "select kind, title, body, data from public.notifications"
            " where kind <> 'badge_awarded' order by id"
        )
    return [dict(r) for r in rows]


@PROPERTY
@given(level=st.integers(2, 100))
async def test_level_is_reached_exactly_at_its_threshold(db: Database, level: int) -> None:
    """Level L starts at exactly 100·(L-1)² + 50·(L-1) XP; one XP less is still level L-1."""
    threshold = level_threshold(level)
    assert await sql(db, "select public.level_for_xp($1)", threshold) == level
    assert await sql(db, "select public.level_for_xp($1)", threshold - 1) == level - 1
    assert await sql(db, "select public.xp_for_level($1)", level) == threshold


@PROPERTY
@given(xp=st.integers(0, 2_000_000))
async def test_level_for_any_xp_follows_the_curve(db: Database, xp: int) -> None:
    """Any XP total maps to the highest level whose threshold it reaches, 100 at most."""
    assert await sql(db, "select public.level_for_xp($1)", xp) == expected_level(xp)


@PROPERTY
@given(level=st.integers(1, 100))
async def test_tier_for_level_follows_the_tier_ranges(db: Database, level: int) -> None:
    """Basic 1-10, Member 11-25, Advanced 26-50, Elite 51-75, Master 76-100."""
    assert await sql(db, "select public.tier_for_level($1)", level) == expected_tier(level)


async def test_default_curve_starts_at_zero_and_ends_at_level_100(db: Database) -> None:
    """Level 1 is at 0 XP, level 2 at 150, level 11 at 10,500; level 100 is the last and holds any more."""
    assert await sql(db, "select count(*) from public.level_curve") == 100
    assert [await sql(db, "select public.xp_for_level($1)", lv) for lv in (1, 2, 11, 100)] == [
        0,
        150,
        10_500,
        985_050,
    ]
    assert await sql(db, "select public.level_for_xp($1)", 2**40) == 100
    assert await sql(db, "select public.xp_for_level(101)") is None


# A total XP to land on: anywhere, or at a level threshold or one XP below it.
TARGETS = st.one_of(
    st.integers(1, 1_100_000),
    st.builds(lambda level, below: level_threshold(level) - below, st.integers(2, 100), st.integers(0, 1)),
)


@PROPERTY
@given(target=TARGETS, purchase=st.integers(1, 100_000))
async def test_award_receipt_level_and_tier_agree_with_the_curve(
    db: Database, target: int, purchase: int
) -> None:
    """An award's receipt and the profile row show the curve's level and tier before and after."""
    purchase = min(purchase, target)
    pid = await new_profile(db)
    if target > purchase:
        await db.rpc(
            "admin_adjust_xp",
            profile_id=pid,
            amount=target - purchase,
            reason="setup",
            idempotency_key=f"{pid}-setup",
        )
    receipt = await award(db, pid, "xp_purchase", f"{pid}-buy", amount=purchase)
    before, after = expected_level(target - purchase), expected_level(target)
    assert (receipt["total_xp"], receipt["level_before"], receipt["level"]) == (target, before, after)
    assert (receipt["tier_before"], receipt["tier"]) == (expected_tier(before), expected_tier(after))
    async with db.as_service() as conn:
        row = await conn.fetchrow("select xp, level, tier from public.profiles where id = $1", pid)
    assert tuple(row) == (target, after, expected_tier(after))


async def test_level_up_notifies_the_member(db: Database) -> None:
    """Crossing 150 XP notifies level 2; staying inside a tier sends no tier-up."""
    pid = await new_profile(db)
    receipt = await award(db, pid, "xp_purchase", "buy-1", amount=150)
    assert (receipt["level_before"], receipt["level"], receipt["unlocks"]) == (1, 2, [])
    [note] = await notifications(db, pid)
    assert (note["kind"], note["title"]) == ("level_up", "Level 2 reached")
    assert note["data"]["level_before"] == 1 and note["data"]["level"] == 2


async def test_one_xp_below_a_level_sends_no_notification(db: Database) -> None:
    """149 XP is still level 1: no level-up."""
    pid = await new_profile(db)
    assert (await award(db, pid, "xp_purchase", "buy-1", amount=149))["level"] == 1
    assert await notifications(db, pid) == []


async def test_tier_up_notification_names_the_unlocked_tools(db: Database) -> None:
    """Reaching level 11 moves Basic to Member and the tier-up names the four Member tools."""
    pid = await new_profile(db)
    below = await award(db, pid, "xp_purchase", "buy-1", amount=10_499)
    assert (below["tier_up"], below["tier_name"]) == (False, None)
    receipt = await award(db, pid, "xp_purchase", "buy-2", amount=1)
    assert (receipt["level"], receipt["tier_before"], receipt["tier"]) == (11, "basic", "member")
    assert [u["name"] for u in receipt["unlocks"]] == MEMBER_TOOLS
    assert (receipt["tier_up"], receipt["tier_name"]) == (True, "Member")
    tier_up = [n for n in await notifications(db, pid) if n["kind"] == "tier_up"]
    assert len(tier_up) == 1
    assert tier_up[0]["title"] == "Tier Member reached"
    assert tier_up[0]["data"]["tier_name"] == "Member"
    assert tier_up[0]["body"] == "Unlocked: " + ", ".join(MEMBER_TOOLS)
    assert tier_up[0]["data"]["unlocks"] == receipt["unlocks"]


async def test_jump_over_a_tier_unlocks_every_tier_passed(db: Database) -> None:
    """From level 1 straight to 26 unlocks the Member and Advanced tools in order, in one tier-up."""
    pid = await new_profile(db)
    receipt = await award(db, pid, "xp_purchase", "buy-1", amount=level_threshold(26))
    assert (receipt["level"], receipt["tier"]) == (26, "advanced")
    assert [(u["tier"], u["name"]) for u in receipt["unlocks"]] == (
        [("member", name) for name in MEMBER_TOOLS] + [("advanced", name) for name in ADVANCED_TOOLS]
    )
    kinds = [n["kind"] for n in await notifications(db, pid)]
    # One tool_unlocked per tool newly held (37_tools.sql), besides the three of the award.
    assert sorted(kinds) == ["layer_status_up", "level_up", "tier_up"] + ["tool_unlocked"] * 8
    [tier_up] = [n for n in await notifications(db, pid) if n["kind"] == "tier_up"]
    assert all(name in tier_up["body"] for name in MEMBER_TOOLS + ADVANCED_TOOLS)


async def test_another_curve_loaded_as_data_changes_levels(db: Database) -> None:
    """Replacing the level_curve rows (here 1000 XP per level) changes what award receipts report."""
    await as_service(db, "delete from public.level_curve where level > 1")
    await as_service(
        db,
        "insert into public.level_curve (level, xp_required) "
        "select l, 1000 * (l - 1) from generate_series(2, 20) l",
    )
    pid = await new_profile(db)
    receipt = await award(db, pid, "xp_purchase", "buy-1", amount=2_500)
    assert (receipt["level"], receipt["tier"]) == (3, "basic")


async def test_a_changed_curve_relevels_everyone_at_commit_and_says_why(db: Database) -> None:
    """Halving the curve moves every member with XP up, once, with a level_changed notification naming the
    curve; a curve replaced by a delete and an insert in one transaction is read complete; XP never moves."""
    members = {xp: await new_profile(db, f"M{xp}") for xp in (0, 149, 150, 5_000, 100_000)}
    for xp, pid in members.items():
        if xp:
            await award(db, pid, "xp_purchase", f"buy-{xp}", amount=xp)
    async with db.pool.acquire() as conn, conn.transaction():
        await conn.execute("delete from public.level_curve")
        await conn.execute(
            "insert into public.level_curve (level, xp_required)"
            " select l, (100 * (l - 1) * (l - 1) + 50 * (l - 1)) / 2 from generate_series(1, 100) l"
        )
        # Inside the transaction nothing has moved yet: the trigger runs at commit, on the whole new curve.
        assert await conn.fetchval("select level from public.profiles where id = $1", members[150]) == 2
    for xp, pid in members.items():
        row = await profile_row(db, pid)
        level = max(lv for lv in range(1, 101) if level_threshold(lv) // 2 <= xp)
        assert (row["xp"], row["level"]) == (xp, level)
        assert row["tier"] == expected_tier(level)
        changed = [n for n in await notifications(db, pid) if n["kind"] == "level_changed"]
        if level == expected_level(xp):
            assert changed == []
        else:
            [note] = changed
            assert note["data"]["reason"] == "level curve"
            assert (note["data"]["level_before"], note["data"]["level"]) == (expected_level(xp), level)
            assert note["data"]["total_xp"] == xp and "changed its level curve" in note["body"]


async def test_changed_tiers_move_cached_tiers(db: Database) -> None:
    """Moving the Member tier to start at level 5 moves a level-6 member from basic to member."""
    pid = await new_profile(db)
    await award(db, pid, "xp_purchase", "buy", amount=level_threshold(6))
    assert (await profile_row(db, pid))["tier"] == "basic"
    await as_service(db, "update public.tiers set min_level = 5 where slug = 'member'")
    row = await profile_row(db, pid)
    assert (row["level"], row["tier"]) == (6, "member")
    [note] = [n for n in await notifications(db, pid) if n["kind"] == "level_changed"]
    data = note["data"]
    assert (data["reason"], data["tier_before"], data["tier"]) == ("tiers", "basic", "member")
    assert note["title"] == "Your tier is now member"
