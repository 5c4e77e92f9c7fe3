"""Profile cards and the public activity feed: what anyone may see of a member, privacy, progress, rank."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from tests.helpers import acting_as, award, make_public, new_profile
from xpbase.db import Database, member_claims
from xpbase.errors import DomainError
from xpbase.models.profiles import AdminGrant, ProfileCard


def ago(delta: timedelta) -> datetime:
    """``delta`` before now, squeezed into this month (UTC) so that every award counts for the current season
    even when a run starts in a month's first hours; order is kept."""
    now = datetime.now(UTC)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    room = now - month_start
    return now - (delta if room > timedelta(hours=4) else delta * (room / timedelta(hours=4)))


async def card_as(
    db: Database, role: str, viewer: UUID | None, profile_id: UUID, **params: Any
) -> ProfileCard:
    claims = member_claims(viewer) if role == "authenticated" and viewer else {"role": role}
    raw = await db.rpc("profile_card", role=role, claims=claims, profile_id=profile_id, **params)  # type: ignore[arg-type]
    return ProfileCard.model_validate(raw)


async def hide(db: Database, pid: UUID) -> None:
    async with db.as_member(pid) as conn:
        await conn.execute(
            "update public.profiles set leaderboard_visible = false where id = (select auth.uid())"
        )


@pytest.fixture
async def members(db: Database) -> dict[str, UUID]:
    """Ana 1000 XP (cyber 700 in three awards, reality 300), Ben 200, Hid 5000 but hidden, Cor 0."""
    ids = {name: await new_profile(db, name) for name in ("Ana", "Ben", "Hid", "Cor")}
    await make_public(db, *ids.values())  # their cards are for anyone (the default is members only)
    for i, amount in enumerate((100, 200, 400)):
        await award(
            db, ids["Ana"], "xp_purchase", f"ana-{i}", amount=amount, occurred_at=ago(timedelta(hours=3 - i))
        )
    await award(
        db, ids["Ana"], "event_attendance", "ana-event", amount=300, occurred_at=ago(timedelta(minutes=5))
    )
    await award(db, ids["Ben"], "xp_purchase", "ben", amount=200, occurred_at=ago(timedelta(minutes=1)))
    await award(db, ids["Hid"], "xp_purchase", "hid", amount=5000, occurred_at=ago(timedelta(minutes=2)))
    await hide(db, ids["Hid"])
    return ids


async def test_anon_sees_level_progress_layers_rank_and_recent_awards(
    db: Database, members: dict[str, UUID]
) -> None:
    """A visitor's card: level 3 at 1000 XP (500 to 1050), rank 1 (hidden members not counted)."""
    card = await card_as(db, "anon", None, members["Ana"])
    assert (card.display_name, card.xp, card.level, card.tier, card.tier_name) == (
        "Ana",
        1000,
        3,
        "basic",
        "Basic",
    )
    assert (
        card.progress.level_xp == 500
        and card.progress.next_level == 4
        and card.progress.next_level_xp == 1050
    )
    assert (card.progress.xp_into_level, card.progress.xp_needed, card.progress.xp_to_next_level) == (
        500,
        550,
        50,
    )
    assert card.rank == 1 and card.ranked_members == 3 and card.is_self is False
    assert {layer.slug: layer.xp for layer in card.layers} == {"reality": 300, "cyber": 700}
    assert all(layer.status for layer in card.layers)
    assert [(a.activity, a.amount) for a in card.recent_activity] == [
        ("event_attendance", 300),
        ("xp_purchase", 400),
        ("xp_purchase", 200),
        ("xp_purchase", 100),
    ]
    assert card.recent_activity[0].activity_name and card.recent_activity[0].layer == "reality"
    seasons = {s.layer: s for s in card.seasons}
    assert seasons["cyber"].xp == 700 and seasons["cyber"].rank == 1
    assert seasons["reality"].xp == 300 and seasons["reality"].rank == 1


async def test_card_never_carries_private_fields(db: Database, members: dict[str, UUID]) -> None:
    """No bio, time zone, points, role or links in the answer, even for the member themself."""
    raw = await db.rpc(
        "profile_card", role="authenticated", claims=member_claims(members["Ana"]), profile_id=members["Ana"]
    )
    flat = str(raw)
    for key in ("bio", "time_zone", "points", "role", "social_links", "leaderboard_visible"):
        assert f"'{key}'" not in flat


async def test_recent_limits_the_activity_and_is_validated(db: Database, members: dict[str, UUID]) -> None:
    """recent=2 gives the two newest awards; recent outside 0-50 is XPBAD."""
    card = await card_as(db, "anon", None, members["Ana"], recent=2)
    assert [a.amount for a in card.recent_activity] == [300, 400]
    assert (await card_as(db, "anon", None, members["Ana"], recent=0)).recent_activity == []
    with pytest.raises(DomainError) as err:
        await card_as(db, "anon", None, members["Ana"], recent=51)
    assert err.value.error.sqlstate == "XPBAD"


@pytest.mark.parametrize("role", ["anon", "authenticated"])
async def test_hidden_member_is_unknown_to_everyone_else(
    db: Database, members: dict[str, UUID], role: str
) -> None:
    """A member who hides from leaderboards reads as XPPRF (as if absent) to anon and other members (the
    backend, moderators and admins see every card: tests/sql/test_profiles.py)."""
    viewer = members["Ben"] if role == "authenticated" else None
    with pytest.raises(DomainError) as err:
        await card_as(db, role, viewer, members["Hid"])
    assert err.value.error.sqlstate == "XPPRF"


async def test_hidden_member_sees_their_own_card(db: Database, members: dict[str, UUID]) -> None:
    """Hidden, the member still sees themself, ranked above everyone they out-score."""
    card = await card_as(db, "authenticated", members["Hid"], members["Hid"])
    assert card.is_self and card.xp == 5000 and card.rank == 1
    assert [a.amount for a in card.recent_activity] == [5000]


async def test_unknown_profile_is_xpprf(db: Database) -> None:
    """A profile id that does not exist is XPPRF, the same answer as a hidden one."""
    with pytest.raises(DomainError) as err:
        await card_as(db, "anon", None, UUID(int=1))
    assert err.value.error.sqlstate == "XPPRF"


async def test_member_without_xp_has_every_layer_at_zero_and_a_level_bar(
    db: Database, members: dict[str, UUID]
) -> None:
    """Cor has no XP: level 1, every layer at 0 with its first status, no activity or season score."""
    card = await card_as(db, "anon", None, members["Cor"])
    assert (card.xp, card.level, card.progress.xp_into_level, card.progress.xp_needed) == (0, 1, 0, 150)
    assert [layer.xp for layer in card.layers] == [0, 0] and all(layer.status for layer in card.layers)
    assert card.recent_activity == [] and all(s.xp == 0 and s.rank is None for s in card.seasons)


async def test_corrections_and_held_back_awards_stay_out_of_the_feed(
    db: Database, members: dict[str, UUID]
) -> None:
    """Corrections (a reason), penalties and 0-XP rows are private: only positive awards are copied."""
    ben = members["Ben"]
    await db.rpc("admin_adjust_xp", profile_id=ben, amount=50, reason="typo fix", idempotency_key="fix-1")
    await db.rpc("admin_adjust_xp", profile_id=ben, amount=-10, reason="penalty", idempotency_key="fix-2")
    await award(db, ben, "message", "msg-1")
    await award(db, ben, "message", "msg-2")  # cooldown: 0 XP
    card = await card_as(db, "anon", None, ben)
    assert [(a.activity, a.amount) for a in card.recent_activity] == [("message", 15), ("xp_purchase", 200)]
    assert card.xp == 200 + 50 - 10 + 15


async def test_feed_rows_follow_the_ledger_and_nobody_writes_them(
    db: Database, members: dict[str, UUID]
) -> None:
    """Every positive award-path ledger row has exactly one feed row with the same amount and time."""
    async with db.pool.acquire() as conn:
        missing = await conn.fetchval(
            "select count(*) from public.xp_ledger l where l.amount > 0 and l.reason is null"
            " and not exists (select 1 from public.activity_feed f where f.ledger_id = l.id"
            " and f.amount = l.amount and f.occurred_at = l.occurred_at and f.profile_id = l.profile_id)"
        )
        extra = await conn.fetchval(
            "select count(*) from public.activity_feed f join public.xp_ledger l on l.id = f.ledger_id"
            " where l.amount <= 0 or l.reason is not null"
        )
    assert (missing, extra) == (0, 0)
    async with acting_as(db, "service_role") as conn:
        import asyncpg

        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("delete from public.activity_feed")


async def test_grant_admin_makes_an_admin_once(db: Database, members: dict[str, UUID]) -> None:
    """service_role_grant_admin sets the role once (changed), then changes nothing; XPPRF for nobody."""
    first = AdminGrant.model_validate(await db.rpc("service_role_grant_admin", profile_id=members["Ben"]))
    again = AdminGrant.model_validate(await db.rpc("service_role_grant_admin", profile_id=members["Ben"]))
    assert (first.role, first.changed, again.role, again.changed) == ("admin", True, "admin", False)
    receipt = await db.rpc(
        "admin_adjust_xp",
        role="authenticated",
        claims=member_claims(members["Ben"]),
        profile_id=members["Ana"],
        amount=5,
        reason="now an admin",
        idempotency_key="ben-admin-1",
    )
    assert receipt["granted"] == 5
    with pytest.raises(DomainError) as err:
        await db.rpc("service_role_grant_admin", profile_id=UUID(int=1))
    assert err.value.error.sqlstate == "XPPRF"
