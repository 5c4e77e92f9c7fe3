"""award_xp: idempotency, concurrency, cooldowns, daily caps, multipliers, the zero floor and bad input."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import award, new_profile
from tests.sql.engine import T0, add_penalty_activity, as_service, cached_totals, ledger_rows, ledger_totals
from xpbase.db import Database
from xpbase.errors import DomainError

# ---------------------------------------------------------------------------
# The receipt
# ---------------------------------------------------------------------------


async def test_first_message_grants_base_xp(db: Database) -> None:
    """A first message credits the activity's base XP, writes one ledger row and says so in the receipt."""
    pid = await new_profile(db, "Alice")
    receipt = await award(db, pid, "message", "msg-1", occurred_at=T0)
    assert receipt["granted"] == 15 and receipt["base"] == 15
    assert float(receipt["multiplier"]) == 1 and receipt["multipliers"] == []
    assert (receipt["cooldown"], receipt["cooldown_remaining_seconds"], receipt["capped"]) == (
        False,
        0,
        False,
    )
    assert (receipt["total_xp_before"], receipt["total_xp"]) == (0, 15)
    assert (receipt["level_before"], receipt["level"]) == (1, 1)
    assert (receipt["tier_before"], receipt["tier"]) == ("basic", "basic")
    assert (receipt["layer"], receipt["layer_xp"]) == ("cyber", 15)
    assert receipt["unlocks"] == [] and receipt["replayed"] is False
    assert receipt["occurred_at"] == "2025-11-21T12:00:00.000000Z"
    [row] = await ledger_rows(db, pid)
    assert (row["id"], row["activity_slug"], row["amount"], row["actor_role"]) == (
        receipt["ledger_id"],
        "message",
        15,
        "service_role",
    )
    assert row["occurred_at"] == T0


# ---------------------------------------------------------------------------
# Idempotency
# ---------------------------------------------------------------------------


async def test_same_idempotency_key_returns_first_receipt_and_credits_once(db: Database) -> None:
    """Repeating a key returns the first receipt with replayed=true and credits nothing, even after others."""
    pid = await new_profile(db)
    first = await award(db, pid, "voice_minute", "vm-1", occurred_at=T0)
    await award(db, pid, "voice_minute", "vm-2", occurred_at=T0)
    again = await award(db, pid, "voice_minute", "vm-1", occurred_at=T0)
    assert again == {**first, "replayed": True}
    assert (await cached_totals(db, pid))["xp"] == 20
    assert len(await ledger_rows(db, pid)) == 2


async def test_replay_without_occurred_at_matches_the_first_call(db: Database) -> None:
    """A key first used without occurred_at replays when called again without it, later in time."""
    pid = await new_profile(db)
    first = await award(db, pid, "message", "now-1")
    again = await award(db, pid, "message", "now-1")
    assert again == {**first, "replayed": True}
    assert (await cached_totals(db, pid))["xp"] == 15


OTHER_PARAMETERS: dict[str, dict[str, Any]] = {
    "activity": {"activity": "challenge_completed"},
    "amount": {"amount": 60},
    "occurred_at": {"occurred_at": T0 + timedelta(seconds=1)},
    "context": {"context": {"event_id": "meetup"}},
    "profile": {"profile_id": None},
}


@pytest.mark.parametrize("change", OTHER_PARAMETERS.values(), ids=OTHER_PARAMETERS.keys())
async def test_same_key_with_other_parameters_raises_xpidm(db: Database, change: dict[str, Any]) -> None:
    """Reusing a key with any other parameter raises XPIDM and credits nothing."""
    pid, other = await new_profile(db), await new_profile(db)
    first = {
        "profile_id": pid,
        "activity": "event_attendance",
        "idempotency_key": "evt-1",
        "amount": 50,
        "occurred_at": T0,
        "context": {},
    }
    await db.rpc("award_xp", **first)
    second = {**first, **change}
    if "profile_id" in change:
        second["profile_id"] = other
    with pytest.raises(DomainError) as raised:
        await db.rpc("award_xp", **second)
    assert raised.value.error.sqlstate == "XPIDM"
    assert len(await ledger_rows(db)) == 1
    assert ((await cached_totals(db, pid))["xp"], (await cached_totals(db, other))["xp"]) == (50, 0)


async def test_concurrent_duplicate_awards_credit_once(db: Database) -> None:
    """50 concurrent calls with one key credit once: one fresh receipt, 49 replays of it."""
    pid = await new_profile(db)
    receipts = await asyncio.gather(*(award(db, pid, "message", "dup-1") for _ in range(50)))
    fresh = [r for r in receipts if not r["replayed"]]
    assert len(fresh) == 1
    assert all(r == {**fresh[0], "replayed": True} for r in receipts if r["replayed"])
    assert len(await ledger_rows(db, pid)) == 1
    assert (await cached_totals(db, pid))["xp"] == 15


@pytest.mark.parametrize("function", ["award_xp", "admin_adjust_xp"])
async def test_concurrent_reuse_of_a_key_for_another_profile_raises_xpidm(
    db: Database, function: str
) -> None:
    """Racing one key for two profiles credits one; the other gets XPIDM, never a raw unique violation."""
    first, second = await new_profile(db), await new_profile(db)

    async def call(profile_id: UUID, key: str) -> dict[str, Any]:
        if function == "award_xp":
            return await award(db, profile_id, "voice_minute", key)
        return await db.rpc(function, profile_id=profile_id, amount=10, reason="Race", idempotency_key=key)

    for i in range(20):
        results = await asyncio.gather(
            call(first, f"race-{i}"), call(second, f"race-{i}"), return_exceptions=True
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        assert len(errors) == 1
        assert isinstance(errors[0], DomainError) and errors[0].error.sqlstate == "XPIDM"
    totals = (await cached_totals(db, first))["xp"], (await cached_totals(db, second))["xp"]
    assert sum(totals) == 200
    assert len(await ledger_rows(db)) == 20


async def test_concurrent_awards_to_one_profile_land_exactly(db: Database) -> None:
    """100 concurrent awards with distinct keys are serialised: every one lands and the totals add up."""
    pid = await new_profile(db)
    receipts = await asyncio.gather(*(award(db, pid, "voice_minute", f"vm-{i}") for i in range(100)))
    assert all(r["granted"] == 10 and not r["replayed"] for r in receipts)
    assert sorted(r["total_xp"] for r in receipts) == list(range(10, 1001, 10))
    cached = await cached_totals(db, pid)
    assert cached["xp"] == 1000
    assert cached == await ledger_totals(db, pid)
    assert len(await ledger_rows(db, pid)) == 100


# ---------------------------------------------------------------------------
# Cooldowns
# ---------------------------------------------------------------------------


async def test_message_within_cooldown_grants_nothing_and_reports_time_left(db: Database) -> None:
    """A second message 30 s after the first grants 0 and reports 30 s of cooldown left."""
    pid = await new_profile(db)
    await award(db, pid, "message", "m1", occurred_at=T0)
    receipt = await award(db, pid, "message", "m2", occurred_at=T0 + timedelta(seconds=30))
    assert (receipt["granted"], receipt["cooldown"], receipt["cooldown_remaining_seconds"]) == (0, True, 30)
    late = await award(db, pid, "message", "m3", occurred_at=T0 + timedelta(seconds=59, microseconds=500_000))
    assert (late["granted"], late["cooldown_remaining_seconds"]) == (0, 1)
    assert (await cached_totals(db, pid))["xp"] == 15
    assert [r["amount"] for r in await ledger_rows(db, pid)] == [15, 0, 0]


async def test_message_after_cooldown_grants(db: Database) -> None:
    """A message 60 s after the last credited one grants again; held-back ones do not restart the clock."""
    pid = await new_profile(db)
    await award(db, pid, "message", "m1", occurred_at=T0)
    await award(db, pid, "message", "m2", occurred_at=T0 + timedelta(seconds=45))
    receipt = await award(db, pid, "message", "m3", occurred_at=T0 + timedelta(seconds=60))
    assert (receipt["granted"], receipt["cooldown"], receipt["cooldown_remaining_seconds"]) == (15, False, 0)
    assert receipt["total_xp"] == 30


async def test_cooldown_is_per_profile_and_activity(db: Database) -> None:
    """A cooldown holds back only the same activity of the same profile."""
    pid, other = await new_profile(db), await new_profile(db)
    await award(db, pid, "message", "m1", occurred_at=T0)
    soon = T0 + timedelta(seconds=10)
    assert (await award(db, other, "message", "m2", occurred_at=soon))["granted"] == 15
    assert (await award(db, pid, "command", "c1", occurred_at=soon))["granted"] == 5
    assert (await award(db, pid, "command", "c2", occurred_at=soon + timedelta(seconds=29)))["granted"] == 0
    assert (await award(db, pid, "command", "c3", occurred_at=soon + timedelta(seconds=30)))["granted"] == 5


async def test_out_of_order_message_inside_cooldown_grants_nothing(db: Database) -> None:
    """A message reported late, within 60 s before a credited one, is also held back."""
    pid = await new_profile(db)
    await award(db, pid, "message", "m1", occurred_at=T0)
    receipt = await award(db, pid, "message", "m0", occurred_at=T0 - timedelta(seconds=20))
    assert (receipt["granted"], receipt["cooldown"]) == (0, True)
    assert (await award(db, pid, "message", "m-1", occurred_at=T0 - timedelta(seconds=60)))["granted"] == 15


# ---------------------------------------------------------------------------
# Daily caps
# ---------------------------------------------------------------------------


async def test_award_crossing_daily_cap_is_granted_up_to_the_cap(db: Database) -> None:
    """With a 100 XP cap, the message that would cross it grants the rest (capped) and the next grants 0."""
    await as_service(db, "update public.cap_groups set daily_cap = 100 where slug = 'discord'")
    pid = await new_profile(db)
    granted = [
        (await award(db, pid, "message", f"m{i}", occurred_at=T0 + timedelta(minutes=i)))["granted"]
        for i in range(6)
    ]
    assert granted == [15] * 6
    crossing = await award(db, pid, "message", "m6", occurred_at=T0 + timedelta(minutes=6))
    assert (crossing["granted"], crossing["capped"]) == (10, True)
    assert crossing["cap"] == {
        "group": "discord",
        "daily_cap": 100,
        "day": "2025-11-21",
        "used": 100,
        "remaining": 0,
    }
    after = await award(db, pid, "message", "m7", occurred_at=T0 + timedelta(minutes=7))
    assert (after["granted"], after["capped"], after["cooldown"]) == (0, True, False)
    voice = await award(db, pid, "voice_minute", "v1", occurred_at=T0 + timedelta(minutes=8))
    assert (voice["granted"], voice["capped"]) == (0, True)
    assert (await cached_totals(db, pid))["xp"] == 100


async def test_exempt_activity_grants_past_the_daily_cap(db: Database) -> None:
    """An activity without a cap group still grants in full once the day's cap is used up."""
    await as_service(db, "update public.cap_groups set daily_cap = 10 where slug = 'discord'")
    pid = await new_profile(db)
    assert (await award(db, pid, "message", "m1", occurred_at=T0))["granted"] == 10
    receipt = await award(db, pid, "event_attendance", "e1", amount=200, occurred_at=T0)
    assert (receipt["granted"], receipt["capped"], receipt["cap"]) == (200, False, None)
    assert receipt["total_xp"] == 210


async def test_daily_cap_counts_every_activity_of_its_group(db: Database) -> None:
    """Messages, voice minutes and commands share the discord cap; another profile has its own."""
    await as_service(db, "update public.cap_groups set daily_cap = 30 where slug = 'discord'")
    pid, other = await new_profile(db), await new_profile(db)
    assert (await award(db, pid, "message", "m1", occurred_at=T0))["granted"] == 15
    assert (await award(db, pid, "voice_minute", "v1", occurred_at=T0))["granted"] == 10
    command = await award(db, pid, "command", "c1", occurred_at=T0)
    assert (command["granted"], command["capped"]) == (5, False)
    assert (await award(db, pid, "voice_minute", "v2", occurred_at=T0))["granted"] == 0
    assert (await award(db, other, "voice_minute", "v3", occurred_at=T0))["granted"] == 10


@pytest.mark.parametrize(
    ("time_zone", "last_of_day", "first_of_next_day", "next_day"),
    [
        ("UTC", "2025-11-21T23:59:59.999999Z", "2025-11-22T00:00:00Z", "2025-11-22"),
        ("Asia/Kolkata", "2025-11-21T18:29:59Z", "2025-11-21T18:30:00Z", "2025-11-22"),
        ("America/Los_Angeles", "2025-11-22T07:59:59Z", "2025-11-22T08:00:00Z", "2025-11-22"),
    ],
)
async def test_daily_cap_resets_at_midnight_in_the_groups_time_zone(
    db: Database, time_zone: str, last_of_day: str, first_of_next_day: str, next_day: str
) -> None:
    """The cap day turns at local midnight of the cap group's time zone, not at UTC midnight."""
    await as_service(
        db, "update public.cap_groups set daily_cap = 20, time_zone = $1 where slug = 'discord'", time_zone
    )
    pid = await new_profile(db)
    last, first = datetime.fromisoformat(last_of_day), datetime.fromisoformat(first_of_next_day)
    for i in range(2):
        assert (await award(db, pid, "voice_minute", f"fill-{i}", occurred_at=last))["granted"] == 10
    held = await award(db, pid, "voice_minute", "held", occurred_at=last)
    assert (held["granted"], held["capped"]) == (0, True)
    fresh = await award(db, pid, "voice_minute", "fresh", occurred_at=first)
    assert (fresh["granted"], fresh["capped"], fresh["cap"]["day"], fresh["cap"]["used"]) == (
        10,
        False,
        next_day,
        10,
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cap=st.integers(1, 600), amounts=st.lists(st.integers(10, 500), min_size=1, max_size=8))
async def test_daily_cap_grants_min_of_amount_and_room_left(
    db: Database, cap: int, amounts: list[int]
) -> None:
    """Each award in a capped group grants min(amount, cap - used), so a day never sums above the cap."""
    await as_service(
        db,
        "insert into public.cap_groups (slug, daily_cap) values ('prop', $1) "
        "on conflict (slug) do update set daily_cap = excluded.daily_cap",
        cap,
    )
    await as_service(
        db,
        "insert into public.activity_types (slug, name, layer_slug, base_xp, min_xp, max_xp, cap_group) "
        "values ('capped_range', 'Capped range', 'reality', 10, 10, 500, 'prop') "
        "on conflict (slug) do nothing",
    )
    pid = await new_profile(db)
    used = 0
    for i, amount in enumerate(amounts):
        receipt = await award(db, pid, "capped_range", f"{pid}-{i}", amount=amount, occurred_at=T0)
        expected = min(amount, cap - used)
        assert (receipt["granted"], receipt["capped"]) == (expected, expected < amount)
        used += expected
    assert (await cached_totals(db, pid))["xp"] == used <= cap


# ---------------------------------------------------------------------------
# Multipliers
# ---------------------------------------------------------------------------


async def add_multiplier(db: Database, kind: str, match: str | None, factor: str, **extra: Any) -> None:
    """Insert one multiplier row as service_role (factor as decimal text)."""
    columns = ["kind", "match_value", "factor", *extra]
    values = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    await as_service(
        db,
        f"insert into public.multipliers ({', '.join(columns)}) values ({values})",
        kind,
        match,
        Decimal(factor),
        *extra.values(),
    )


async def test_largest_multiplier_of_one_kind_counts(db: Database) -> None:
    """Two matching role multipliers do not stack: only the larger one applies."""
    await add_multiplier(db, "role", "111", "2")
    await add_multiplier(db, "role", "222", "3")
    pid = await new_profile(db)
    receipt = await award(
        db, pid, "voice_minute", "v1", occurred_at=T0, context={"role_ids": ["111", "222", "999"]}
    )
    assert (receipt["base"], float(receipt["multiplier"]), receipt["granted"]) == (10, 3.0, 30)
    assert [(m["kind"], m["match"]) for m in receipt["multipliers"]] == [("role", "222")]


async def test_multipliers_of_different_kinds_multiply(db: Database) -> None:
    """A role multiplier and a channel multiplier multiply: 2 x 1.5 = 3."""
    await add_multiplier(db, "role", "111", "2")
    await add_multiplier(db, "channel", "555", "1.5")
    pid = await new_profile(db)
    receipt = await award(
        db, pid, "voice_minute", "v1", occurred_at=T0, context={"role_ids": ["111"], "channel_id": "555"}
    )
    assert (float(receipt["multiplier"]), receipt["granted"]) == (3.0, 30)
    unmatched = await award(
        db, pid, "voice_minute", "v2", occurred_at=T0, context={"role_ids": ["112"], "channel_id": "556"}
    )
    assert (float(unmatched["multiplier"]), unmatched["granted"]) == (1.0, 10)


async def test_multiplier_product_is_capped_at_max_multiplier(db: Database) -> None:
    """Role 3 x channel 2 x event 2 = 12 is capped at engine_settings.max_multiplier (5; 4 when lowered)."""
    await add_multiplier(db, "role", "111", "3")
    await add_multiplier(db, "channel", "555", "2")
    await add_multiplier(db, "event", None, "2")
    pid = await new_profile(db)
    context = {"role_ids": ["111"], "channel_id": "555"}
    receipt = await award(db, pid, "voice_minute", "v1", occurred_at=T0, context=context)
    assert (float(receipt["multiplier"]), receipt["granted"]) == (5.0, 50)
    await as_service(db, "update public.engine_settings set max_multiplier = 4")
    receipt = await award(db, pid, "voice_minute", "v2", occurred_at=T0, context=context)
    assert (float(receipt["multiplier"]), receipt["granted"]) == (4.0, 40)


async def test_timed_event_multiplier_applies_only_inside_its_window(db: Database) -> None:
    """An event multiplier counts from starts_at (inclusive) to ends_at (exclusive), only for its event_id."""
    start, end = T0, T0 + timedelta(hours=2)
    await add_multiplier(db, "event", "hackathon", "2", starts_at=start, ends_at=end)
    pid = await new_profile(db)
    ctx = {"event_id": "hackathon"}

    async def granted(key: str, at: datetime, context: dict[str, Any]) -> int:
        return int(
            (await award(db, pid, "event_attendance", key, amount=100, occurred_at=at, context=context))[
                "granted"
            ]
        )

    assert await granted("before", start - timedelta(microseconds=1), ctx) == 100
    assert await granted("start", start, ctx) == 200
    assert await granted("inside", end - timedelta(microseconds=1), ctx) == 200
    assert await granted("end", end, ctx) == 100
    assert await granted("other-event", start, {"event_id": "meetup"}) == 100


async def test_activity_specific_multiplier_applies_only_to_its_activity(db: Database) -> None:
    """A multiplier tied to an activity leaves other activities alone; fractional XP rounds down."""
    await add_multiplier(db, "channel", "555", "1.25", activity_slug="message")
    pid = await new_profile(db)
    message = await award(db, pid, "message", "m1", occurred_at=T0, context={"channel_id": "555"})
    voice = await award(db, pid, "voice_minute", "v1", occurred_at=T0, context={"channel_id": "555"})
    assert (message["granted"], voice["granted"]) == (18, 10)


async def test_multipliers_do_not_scale_penalties(db: Database) -> None:
    """A negative award is taken as is, whatever multipliers match."""
    penalty = await add_penalty_activity(db, xp=-20)
    await add_multiplier(db, "role", "111", "3")
    pid = await new_profile(db)
    await award(db, pid, "xp_purchase", "buy-1", amount=100, occurred_at=T0)
    receipt = await award(db, pid, penalty, "p1", occurred_at=T0, context={"role_ids": ["111"]})
    assert (receipt["granted"], float(receipt["multiplier"])) == (-20, 1.0)


# ---------------------------------------------------------------------------
# The zero floor and the cached totals
# ---------------------------------------------------------------------------


async def test_penalty_never_takes_xp_below_zero(db: Database) -> None:
    """A penalty larger than the member's XP takes it to exactly zero (floored) and the next takes nothing."""
    penalty = await add_penalty_activity(db, xp=-50)
    pid = await new_profile(db)
    await award(db, pid, "message", "m1", occurred_at=T0)
    receipt = await award(db, pid, penalty, "p1", occurred_at=T0)
    assert (receipt["granted"], receipt["floored"], receipt["total_xp"], receipt["layer_xp"]) == (
        -15,
        True,
        0,
        0,
    )
    again = await award(db, pid, penalty, "p2", occurred_at=T0)
    assert (again["granted"], again["total_xp"]) == (0, 0)
    assert await cached_totals(db, pid) == await ledger_totals(db, pid)


async def test_penalty_only_takes_xp_of_its_own_layer(db: Database) -> None:
    """A cyber penalty cannot take reality XP: each layer is floored at zero on its own."""
    penalty = await add_penalty_activity(db, xp=-50, layer="cyber")
    pid = await new_profile(db)
    await award(db, pid, "event_attendance", "e1", amount=100, occurred_at=T0)
    await award(db, pid, "voice_minute", "v1", occurred_at=T0)
    receipt = await award(db, pid, penalty, "p1", occurred_at=T0)
    assert (receipt["granted"], receipt["floored"], receipt["total_xp"]) == (-10, True, 100)
    assert (await cached_totals(db, pid))["layers"] == {"reality": 100}


async def test_penalty_frees_room_under_the_daily_cap(db: Database) -> None:
    """The daily cap counts net XP: a penalty in the cap group gives that room back."""
    await as_service(db, "update public.cap_groups set daily_cap = 20 where slug = 'discord'")
    penalty = await add_penalty_activity(db, xp=-10)
    await as_service(db, "update public.activity_types set cap_group = 'discord' where slug = $1", penalty)
    pid = await new_profile(db)
    await award(db, pid, "voice_minute", "v1", occurred_at=T0)
    await award(db, pid, "voice_minute", "v2", occurred_at=T0)
    await award(db, pid, penalty, "p1", occurred_at=T0)
    receipt = await award(db, pid, "voice_minute", "v3", occurred_at=T0)
    assert (receipt["granted"], receipt["capped"], receipt["total_xp"]) == (10, False, 20)


# One step of a mixed sequence: (kind, seconds after the start, amount or level).
STEPS = st.one_of(
    st.tuples(
        st.sampled_from(["message", "voice_minute", "command", "penalty"]),
        st.integers(0, 14 * 86400),
        st.just(0),
    ),
    st.tuples(st.just("event_attendance"), st.integers(0, 14 * 86400), st.integers(10, 500)),
    st.tuples(st.just("adjust"), st.just(0), st.integers(-3000, 3000).filter(bool)),
    st.tuples(st.just("set_level"), st.just(0), st.integers(1, 8)),
    st.tuples(st.just("reset"), st.just(0), st.just(0)),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(STEPS, min_size=1, max_size=12))
async def test_cached_totals_equal_ledger_sums_after_mixed_sequence(
    db: Database, steps: list[tuple[str, int, int]]
) -> None:
    """After any mix of awards, penalties and corrections, XP stays >= 0 and every cache equals the ledger."""
    await add_penalty_activity(db, xp=-40)
    await as_service(db, "update public.cap_groups set daily_cap = 200 where slug = 'discord'")
    pid = await new_profile(db)
    start = T0 - timedelta(days=30)
    for i, (kind, offset, value) in enumerate(steps):
        key = f"{pid}-{i}"
        at = start + timedelta(seconds=offset)
        if kind == "event_attendance":
            await award(db, pid, kind, key, amount=value, occurred_at=at)
        elif kind == "penalty":
            await award(db, pid, "spam_penalty", key, occurred_at=at)
        elif kind == "adjust":
            await db.rpc("admin_adjust_xp", profile_id=pid, amount=value, reason="test", idempotency_key=key)
        elif kind == "set_level":
            await db.rpc("admin_set_level", profile_id=pid, level=value, reason="test")
        elif kind == "reset":
            await db.rpc("admin_reset_xp", profile_id=pid, reason="test")
        else:
            await award(db, pid, kind, key, occurred_at=at)
        cached = await cached_totals(db, pid)
        assert cached == await ledger_totals(db, pid)
        assert cached["xp"] >= 0 and all(xp > 0 for xp in cached["layers"].values())


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------

BAD_CALLS: dict[str, tuple[dict[str, Any], str]] = {
    "null_key": ({"idempotency_key": None}, "XPBAD"),
    "empty_key": ({"idempotency_key": ""}, "XPBAD"),
    "long_key": ({"idempotency_key": "k" * 201}, "XPBAD"),
    "null_profile": ({"profile_id": None}, "XPBAD"),
    "unknown_profile": ({"profile_id": "unknown"}, "XPPRF"),
    "unknown_activity": ({"activity": "sneezing"}, "XPACT"),
    "null_activity": ({"activity": None}, "XPACT"),
    "inactive_activity": ({"activity": "admin_adjustment", "amount": 10}, "XPACT"),
    "amount_below_range": ({"amount": 9}, "XPAMT"),
    "amount_above_range": ({"amount": 501}, "XPAMT"),
    "amount_for_fixed_activity": ({"activity": "message", "amount": 16}, "XPAMT"),
    "context_array": ({"context": [1, 2]}, "XPBAD"),
    "context_string": ({"context": "vip"}, "XPBAD"),
    "role_ids_not_array": ({"context": {"role_ids": "111"}}, "XPBAD"),
}


@pytest.mark.parametrize(("change", "sqlstate"), BAD_CALLS.values(), ids=BAD_CALLS.keys())
async def test_bad_input_raises_and_changes_nothing(
    db: Database, change: dict[str, Any], sqlstate: str
) -> None:
    """Malformed or disallowed arguments raise their SQLSTATE, write nothing, and leave the key free."""
    pid = await new_profile(db)
    good: dict[str, Any] = {
        "profile_id": pid,
        "activity": "event_attendance",
        "idempotency_key": "k1",
        "amount": 50,
        "occurred_at": T0,
        "context": {},
    }
    bad = {**good, **change}
    if bad["profile_id"] == "unknown":
        bad["profile_id"] = uuid4()
    with pytest.raises(DomainError) as raised:
        await db.rpc("award_xp", **bad)
    assert raised.value.error.sqlstate == sqlstate
    assert await ledger_rows(db) == []
    async with db.pool.acquire() as conn:
        assert await conn.fetchval("select count(*) from private.daily_cap_usage") == 0
        assert await conn.fetchval("select count(*) from public.seasons") == 0
        assert await conn.fetchval("select count(*) from public.notifications") == 0
    assert (await cached_totals(db, pid))["xp"] == 0
    assert (await db.rpc("award_xp", **good))["granted"] == 50


async def test_fixed_activity_accepts_its_own_amount(db: Database) -> None:
    """Naming the fixed amount of a fixed activity is allowed and grants it."""
    pid = await new_profile(db)
    assert (await award(db, pid, "message", "m1", amount=15, occurred_at=T0))["granted"] == 15
