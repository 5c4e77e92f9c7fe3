"""Rule-pack features of award_xp: dated rates, per-activity floors, and the batch RPC."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import acting_as, award, new_profile
from xpbase.db import Database
from xpbase.errors import DomainError


async def add_activity(
    db: Database,
    slug: str,
    base_xp: int,
    *,
    floor: int = 0,
    cap_group: str | None = None,
    min_xp: int | None = None,
    max_xp: int | None = None,
) -> None:
    """An activity in the cyber layer, made as service_role."""
    async with db.as_service() as conn:
        await conn.execute(
            "insert into public.activity_types"
            " (slug, name, layer_slug, base_xp, min_xp, max_xp, cap_group, xp_floor)"
            " values ($1, $1, 'cyber', $2, $3, $4, $5, $6)",
            slug,
            base_xp,
            min_xp,
            max_xp,
            cap_group,
            floor,
        )


async def add_rate(db: Database, slug: str, effective_from: str, base_xp: int) -> None:
    async with db.as_service() as conn:
        await conn.execute(
            "insert into public.activity_rates (activity_slug, effective_from, base_xp)"
            " values ($1, $2::text::timestamptz, $3)",
            slug,
            effective_from,
            base_xp,
        )


async def test_rate_in_force_at_occurred_at_is_granted(db: Database) -> None:
    """Before the first dated rate the activity's base_xp applies; from each effective_from on, that rate."""
    await add_activity(db, "q_upvote", 5)
    await add_rate(db, "q_upvote", "2019-11-13T00:00:00Z", 10)
    await add_rate(db, "q_upvote", "2024-01-01T00:00:00Z", 20)
    pid = await new_profile(db)
    grants = []
    for i, when in enumerate(
        (
            "2019-11-12T23:59:59+00:00",
            "2019-11-13T00:00:00+00:00",
            "2023-12-31T00:00:00+00:00",
            "2024-01-01T00:00:00+00:00",
        )
    ):
        receipt = await award(db, pid, "q_upvote", f"k{i}", occurred_at=datetime.fromisoformat(when))
        grants.append((receipt["base"], receipt["granted"]))
    assert grants == [(5, 5), (10, 10), (10, 10), (20, 20)]


async def test_fixed_amount_named_by_caller_must_match_the_rate_in_force(db: Database) -> None:
    """A caller naming the amount of a fixed activity must name the rate in force then (XPAMT otherwise)."""
    await add_activity(db, "q_upvote", 5)
    await add_rate(db, "q_upvote", "2019-11-13T00:00:00Z", 10)
    pid = await new_profile(db)
    later = datetime.fromisoformat("2020-01-01T00:00:00+00:00")
    assert (await award(db, pid, "q_upvote", "a", amount=10, occurred_at=later))["granted"] == 10
    with pytest.raises(DomainError) as err:
        await award(db, pid, "q_upvote", "b", amount=5, occurred_at=later)
    assert err.value.code == "amount_not_allowed"


async def test_rate_outside_the_activity_range_is_refused(db: Database) -> None:
    """A dated rate outside [min_xp, max_xp] is refused with XPAMT and not stored."""
    await add_activity(db, "ranged", 50, min_xp=10, max_xp=100)
    with pytest.raises(DomainError) as err:
        await add_rate(db, "ranged", "2020-01-01T00:00:00Z", 500)
    assert err.value.code == "amount_not_allowed"
    async with db.as_service() as conn:
        assert await conn.fetchval("select count(*) from public.activity_rates") == 0


async def test_floor_of_one_stops_penalties_at_one(db: Database) -> None:
    """With xp_floor 1 a penalty reduces XP to 1 at most, and grants 0 at or below 1."""
    await add_activity(db, "start", 1)
    await add_activity(db, "up", 5)
    await add_activity(db, "down", -2, floor=1)
    pid = await new_profile(db)
    await award(db, pid, "start", "s")
    await award(db, pid, "up", "u")  # 6
    grants = [(await award(db, pid, "down", f"d{i}"))["granted"] for i in range(4)]
    assert grants == [-2, -2, -1, 0]
    receipt = await award(db, pid, "down", "d4")
    assert (receipt["granted"], receipt["floored"], receipt["total_xp"]) == (0, True, 1)


async def test_default_floor_is_still_zero(db: Database) -> None:
    """Activities without xp_floor keep the engine's floor at zero."""
    await add_activity(db, "penalty", -30)
    pid = await new_profile(db)
    await award(db, pid, "xp_purchase", "c", amount=20)
    receipt = await award(db, pid, "penalty", "p")
    assert (receipt["granted"], receipt["total_xp"], receipt["floored"]) == (-20, 0, True)


async def test_penalty_below_an_unreached_floor_grants_nothing(db: Database) -> None:
    """A member below the floor (no starting point yet) is not pushed further down nor lifted up."""
    await add_activity(db, "down", -2, floor=1)
    pid = await new_profile(db)
    receipt = await award(db, pid, "down", "d")
    assert (receipt["granted"], receipt["total_xp"]) == (0, 0)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    floor=st.integers(min_value=0, max_value=20),
    amounts=st.lists(st.integers(min_value=-40, max_value=40).filter(bool), min_size=1, max_size=12),
)
async def test_floor_arithmetic_matches_the_rule(db: Database, floor: int, amounts: list[int]) -> None:
    """Any run of gains and penalties lands where 'never below the floor, never lifted by a penalty' says."""
    slug = f"pm_{uuid.uuid4().hex[:10]}"
    await add_activity(db, slug, 1, floor=floor, min_xp=-40, max_xp=40)
    pid = await new_profile(db)
    expected = 0
    for i, amount in enumerate(amounts):
        receipt = await award(db, pid, slug, f"{slug}:{i}", amount=amount)
        if amount > 0:
            want = amount
        else:
            want = max(amount, min(floor - expected, 0))
        assert receipt["granted"] == want
        expected += want
    assert receipt["total_xp"] == expected


async def test_batch_decides_like_single_calls(db: Database) -> None:
    """The batch RPC grants exactly what award_xp grants, item by item, with cap and floor."""
    async with db.as_service() as conn:
        await conn.execute("insert into public.cap_groups (slug, daily_cap) values ('small', 25)")
    await add_activity(db, "up", 10, cap_group="small")
    await add_activity(db, "down", -2, floor=1, cap_group="small")
    await add_activity(db, "start", 1)
    items = ["start", "up", "up", "down", "up", "up", "down", "down"]
    single = await new_profile(db)
    expected = [
        (await award(db, single, act, f"s{i}", occurred_at=None))["granted"] for i, act in enumerate(items)
    ]
    batched = await new_profile(db)
    payload = [
        {"profile_id": str(batched), "activity": act, "idempotency_key": f"b{i}"}
        for i, act in enumerate(items)
    ]
    rows = await _batch(db, payload)
    assert [r["granted"] for r in rows] == expected == [1, 10, 10, -2, 7, 0, -2, -2]
    assert [r["idempotency_key"] for r in rows] == [f"b{i}" for i in range(len(items))]
    assert [r["capped"] for r in rows][4:6] == [True, True]


async def test_batch_twice_credits_once(db: Database) -> None:
    """The same batch again replays every item: nothing new in the ledger."""
    pid = await new_profile(db)
    payload = [
        {
            "profile_id": str(pid),
            "activity": "event_attendance",
            "idempotency_key": f"e{i}",
            "amount": 50,
            "occurred_at": "2026-01-01T10:00:00Z",
        }
        for i in range(3)
    ]
    first = await _batch(db, payload)
    second = await _batch(db, payload)
    assert [r["replayed"] for r in first] == [False] * 3
    assert [r["replayed"] for r in second] == [True] * 3
    async with db.as_service() as conn:
        assert await conn.fetchval("select count(*) from public.xp_ledger where profile_id = $1", pid) == 3
        assert await conn.fetchval("select xp from public.profiles where id = $1", pid) == 150


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"not": "an array"}, "awards must be a JSON array"),
        ([1], "awards[0]: must be a JSON object"),
        ([{"profile_id": "x", "activity": "message", "idempotency_key": "k"}], "awards[0]:"),
        ([{"activity": "message", "idempotency_key": "k", "extra": 1}], "awards[0]: unknown key"),
        ([{"activity": "message", "idempotency_key": "k"}], "awards[0]: profile_id is required"),
    ],
)
async def test_batch_refuses_malformed_items(db: Database, payload: object, message: str) -> None:
    """Malformed input is XPBAD naming the item, and nothing is written."""
    with pytest.raises(DomainError) as err:
        await _batch(db, payload)
    assert err.value.code == "invalid_argument"
    assert message in err.value.message


async def test_batch_is_all_or_nothing(db: Database) -> None:
    """A failing item rolls back the items before it and names its index."""
    pid = await new_profile(db)
    payload = [
        {"profile_id": str(pid), "activity": "event_attendance", "idempotency_key": "ok", "amount": 50},
        {"profile_id": str(pid), "activity": "event_attendance", "idempotency_key": "bad", "amount": 5000},
    ]
    with pytest.raises(DomainError) as err:
        await _batch(db, payload)
    assert err.value.code == "amount_not_allowed"
    assert err.value.message.startswith("awards[1]:")
    async with db.as_service() as conn:
        assert await conn.fetchval("select count(*) from public.xp_ledger where profile_id = $1", pid) == 0


async def test_batch_and_rates_are_closed_to_members(db: Database) -> None:
    """Only service_role may call the batch RPC; members and anon read the rates but cannot write them."""
    pid = await new_profile(db)
    for role in ("anon", "authenticated"):
        async with acting_as(db, role, pid) as conn:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch("select * from public.service_role_award_xp_batch('[]')")
        async with acting_as(db, role, pid) as conn:
            assert await conn.fetchval("select count(*) from public.activity_rates") == 0
        async with acting_as(db, role, pid) as conn:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(
                    "insert into public.activity_rates (activity_slug, effective_from, base_xp)"
                    " values ('message', now(), 1)"
                )
    async with acting_as(db, "authenticated", pid) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("update public.activity_types set xp_floor = 5 where slug = 'message'")


async def _batch(db: Database, payload: object) -> list[dict[str, object]]:
    async with db.as_service() as conn:
        rows = await conn.fetch("select * from public.service_role_award_xp_batch($1::jsonb)", payload)
    return [dict(r) for r in rows]
