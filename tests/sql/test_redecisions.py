"""Late awards decided in time order (supabase/sql/34_redecisions.sql, issue 16 item 4).

An award that arrives after awards of the same member dated later than it, within the late-award horizon
(engine_settings.late_award_horizon_seconds, 48 h), is decided as of its time; the later awards whose
cooldown or daily cap it changes are decided again and the differences appended as correction rows that
name the award they correct. The ledger ends as if the awards had arrived in time order. Beyond the horizon
a late award is decided as of its arrival and the receipt says so.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import award, new_profile
from tests.sql.engine import as_service, cached_totals, ledger_totals
from xpbase.db import Database
from xpbase.errors import DomainError
from xpbase.models.engine import AwardReceipt


def recent() -> datetime:
    """A whole minute about a day ago: inside the 48 h horizon, in the past, and clear of UTC midnight."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    day_ago = now - timedelta(hours=24)
    # Keep the awards of a test inside one UTC day, so the daily cap's day is the same for all of them.
    return day_ago.replace(hour=10) if day_ago.hour not in range(2, 20) else day_ago - timedelta(hours=1)


async def nets(db: Database, pid: UUID) -> dict[str, int]:
    """Each award's net grant (XP): its amount plus the rows correcting or reversing it, by key."""
    rows = await db.pool.fetch(
        "select u.idempotency_key, (u.amount + coalesce((select sum(c.amount) from public.xp_ledger c"
        "   where c.corrects_id = u.id or c.reverses_id = u.id), 0))::int as net"
        "  from public.xp_ledger u where u.profile_id = $1 and u.request ->> 'fn' = 'award_xp'",
        pid,
    )
    return {r["idempotency_key"]: r["net"] for r in rows}


async def points_sum(db: Database, pid: UUID) -> int:
    return await db.pool.fetchval(
        "select coalesce(sum(amount), 0)::int from public.points_ledger where profile_id = $1", pid
    )


async def consistent(db: Database, pid: UUID) -> dict[str, Any]:
    """The cached totals equal the ledger's sums (the engine's invariant); returns the cached totals."""
    cached = await cached_totals(db, pid)
    derived = await ledger_totals(db, pid)
    cached_points = cached.pop("points")
    derived.pop("points")
    assert cached == derived
    assert cached_points == await points_sum(db, pid)
    return cached


async def test_messages_earn_the_same_in_any_arrival_order(db: Database) -> None:
    """The issue's case: messages at +0, +45 and +90 s (60 s cooldown) earn 30 XP however they arrive."""
    t0 = recent()
    in_order = await new_profile(db, "InOrder")
    for second in (0, 45, 90):
        await award(db, in_order, "message", f"o{second}", occurred_at=t0 + timedelta(seconds=second))
    late = await new_profile(db, "Late")
    first = await award(db, late, "message", "m45", occurred_at=t0 + timedelta(seconds=45))
    assert first["granted"] == 15 and not first["late"]
    catch_up = AwardReceipt.model_validate(
        await award(db, late, "message", "m00", occurred_at=t0), context=None
    )
    assert (catch_up.granted, catch_up.late, catch_up.beyond_horizon) == (15, True, False)
    assert [(r.ledger_id, r.granted_before, r.granted) for r in catch_up.redecided] == [
        (first["ledger_id"], 15, 0)
    ]
    last = await award(db, late, "message", "m90", occurred_at=t0 + timedelta(seconds=90))
    assert (last["granted"], last["late"], last["cooldown"]) == (15, False, False)

    assert await nets(db, late) == {"m00": 15, "m45": 0, "m90": 15}
    assert await nets(db, in_order) == {"o0": 15, "o45": 0, "o90": 15}
    late_totals, order_totals = await consistent(db, late), await consistent(db, in_order)
    assert late_totals["xp"] == order_totals["xp"] == 30
    assert await points_sum(db, late) == await points_sum(db, in_order) == 30

    # The correction is a new row naming the award it corrects; the award's own row is unchanged.
    correction = await db.pool.fetchrow(
        "select * from public.xp_ledger where corrects_id = $1", first["ledger_id"]
    )
    assert correction["amount"] == -15
    assert correction["occurred_at"] == t0 + timedelta(seconds=45)
    assert correction["idempotency_key"] == f"redecide:{first['ledger_id']}:{catch_up.ledger_id}"
    assert correction["receipt"]["correction"] == "redecide"
    assert (correction["receipt"]["granted_before"], correction["receipt"]["granted_after"]) == (15, 0)
    assert (
        await db.pool.fetchval("select amount from public.xp_ledger where id = $1", first["ledger_id"]) == 15
    )


async def test_the_daily_cap_cuts_the_latest_in_time(db: Database) -> None:
    """With 25 XP a day, voice minutes at 1, 2 and 3 h credit 10, 10, 5 whichever arrived last."""
    await as_service(db, "update public.cap_groups set daily_cap = 25 where slug = 'discord'")
    t0 = recent()
    pid = await new_profile(db, "Capped")
    two = await award(db, pid, "voice_minute", "v2", occurred_at=t0 + timedelta(hours=2))
    three = await award(db, pid, "voice_minute", "v3", occurred_at=t0 + timedelta(hours=3))
    assert (two["granted"], three["granted"]) == (10, 10)
    one = await award(db, pid, "voice_minute", "v1", occurred_at=t0 + timedelta(hours=1))
    assert (one["granted"], one["capped"], one["late"]) == (10, False, True)
    assert one["cap"]["used"] == 10  # the day's use up to this award, in time order
    assert [(r["ledger_id"], r["granted_before"], r["granted"]) for r in one["redecided"]] == [
        (three["ledger_id"], 10, 5)
    ]
    assert await nets(db, pid) == {"v1": 10, "v2": 10, "v3": 5}
    assert (await consistent(db, pid))["xp"] == 25
    # The cap usage follows: the day is full, so a fourth minute that day credits nothing.
    assert (
        await db.pool.fetchval(
            "select used from private.daily_cap_usage where profile_id = $1 and cap_group = 'discord'", pid
        )
        == 25
    )
    fourth = await award(db, pid, "voice_minute", "v4", occurred_at=t0 + timedelta(hours=4))
    assert (fourth["granted"], fourth["capped"]) == (0, True)


async def test_a_late_award_held_by_an_earlier_cooldown_says_how_long(db: Database) -> None:
    """A late message 30 s after a credited one is held back with the cooldown left."""
    t0 = recent()
    pid = await new_profile(db, "Held")
    await award(db, pid, "message", "a", occurred_at=t0)
    await award(db, pid, "message", "c", occurred_at=t0 + timedelta(seconds=120))
    held = await award(db, pid, "message", "b", occurred_at=t0 + timedelta(seconds=30))
    assert (held["granted"], held["cooldown"], held["cooldown_remaining_seconds"]) == (0, True, 30)
    assert (held["late"], held["redecided"]) == (True, [])
    assert await nets(db, pid) == {"a": 15, "b": 0, "c": 15}


async def test_beyond_the_horizon_a_late_award_is_decided_as_of_its_arrival(db: Database) -> None:
    """An award dated 72 h ago arriving after newer ones is decided by arrival, and its receipt says so."""
    now = datetime.now(UTC).replace(microsecond=0)
    pid = await new_profile(db, "Old")
    newer = await award(
        db, pid, "message", "new", occurred_at=now - timedelta(hours=71, minutes=59, seconds=30)
    )
    old = await award(db, pid, "message", "old", occurred_at=now - timedelta(hours=72))
    # Arrival order: the newer credited message, 30 s later, holds the older one back.
    assert (old["granted"], old["cooldown"], old["late"], old["beyond_horizon"]) == (0, True, True, True)
    assert old["redecided"] == []
    assert await nets(db, pid) == {"new": 15, "old": 0}
    assert newer["late"] is False


async def test_a_zero_horizon_turns_redecision_off(db: Database) -> None:
    """late_award_horizon_seconds = 0: every late award is decided by arrival."""
    await as_service(db, "update public.engine_settings set late_award_horizon_seconds = 0")
    t0 = recent()
    pid = await new_profile(db, "Off")
    await award(db, pid, "message", "m45", occurred_at=t0 + timedelta(seconds=45))
    late = await award(db, pid, "message", "m00", occurred_at=t0)
    assert (late["granted"], late["late"], late["beyond_horizon"], late["redecided"]) == (0, True, True, [])


async def test_the_horizon_setting_is_bounded(db: Database) -> None:
    """The horizon is 0 to 30 days (a check constraint); the default is 48 h."""
    assert await db.pool.fetchval("select late_award_horizon_seconds from public.engine_settings") == 172800
    with pytest.raises(Exception, match="late_award_horizon_seconds"):
        await as_service(db, "update public.engine_settings set late_award_horizon_seconds = 2592001")


async def test_a_replayed_late_award_redecides_nothing_twice(db: Database) -> None:
    """The same key again: the first receipt (with its redecided list), no second correction."""
    t0 = recent()
    pid = await new_profile(db, "Again")
    await award(db, pid, "message", "m45", occurred_at=t0 + timedelta(seconds=45))
    first = await award(db, pid, "message", "m00", occurred_at=t0)
    again = await award(db, pid, "message", "m00", occurred_at=t0)
    assert again["replayed"] is True
    assert again["redecided"] == first["redecided"] and len(first["redecided"]) == 1
    assert (
        await db.pool.fetchval(
            "select count(*) from public.xp_ledger where profile_id = $1 and corrects_id is not null", pid
        )
        == 1
    )


async def test_reversals_reverse_the_net_grant_and_refuse_corrections(db: Database) -> None:
    """A correction row cannot be reversed (XPREV); a corrected award is reversed by its net grant."""
    await as_service(db, "update public.cap_groups set daily_cap = 25 where slug = 'discord'")
    t0 = recent()
    pid = await new_profile(db, "Rev")
    await award(db, pid, "voice_minute", "v2", occurred_at=t0 + timedelta(hours=2))
    three = await award(db, pid, "voice_minute", "v3", occurred_at=t0 + timedelta(hours=3))
    await award(db, pid, "voice_minute", "v1", occurred_at=t0 + timedelta(hours=1))
    correction_id = await db.pool.fetchval(
        "select id from public.xp_ledger where corrects_id = $1", three["ledger_id"]
    )
    with pytest.raises(DomainError) as refused:
        await db.rpc("reverse_award", ledger_id=correction_id, reason="wrong row")
    assert refused.value.error.sqlstate == "XPREV"
    reversal = await db.rpc("reverse_award", ledger_id=three["ledger_id"], reason="spam")
    assert reversal["granted"] == -5
    assert await nets(db, pid) == {"v1": 10, "v2": 10, "v3": 0}
    assert (await consistent(db, pid))["xp"] == 20


AWARDS = st.lists(
    st.tuples(st.sampled_from(["message", "command", "voice_minute"]), st.integers(0, 600)),
    min_size=1,
    max_size=7,
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(awards=AWARDS, order=st.randoms(use_true_random=False), cap=st.integers(10, 80))
async def test_any_arrival_order_within_the_horizon_gives_the_time_order_ledger(
    db: Database, awards: list[tuple[str, int]], order: Any, cap: int
) -> None:
    """Hypothesis: a stream of messages (60 s cooldown), commands (30 s) and voice minutes under one daily
    cap, sent in time order to one member and in a random permutation to another, ends with the same net
    grant per award, the same ledger sums and points, and cached totals equal to the ledger's."""
    await as_service(db, f"update public.cap_groups set daily_cap = {cap} where slug = 'discord'")
    t0 = recent()
    stream = [(f"{i:02d}", act, t0 + timedelta(seconds=offset)) for i, (act, offset) in enumerate(awards)]
    in_time = sorted(stream, key=lambda item: (item[2], item[0]))
    shuffled = list(stream)
    order.shuffle(shuffled)
    a, b = await new_profile(db, "A"), await new_profile(db, "B")
    run = uuid4().hex[:8]  # idempotency keys are global; every example uses new ones
    for key, activity, occurred in in_time:
        await award(db, a, activity, f"{run}-a-{key}", occurred_at=occurred)
    for key, activity, occurred in shuffled:
        await award(db, b, activity, f"{run}-b-{key}", occurred_at=occurred)
    nets_a, nets_b = await nets(db, a), await nets(db, b)
    assert {k.rsplit("-", 1)[1]: v for k, v in nets_a.items()} == {
        k.rsplit("-", 1)[1]: v for k, v in nets_b.items()
    }
    totals_a, totals_b = await consistent(db, a), await consistent(db, b)
    assert totals_a["xp"] == totals_b["xp"] == sum(nets_a.values())
    assert totals_a["layers"] == totals_b["layers"]
    assert await points_sum(db, a) == await points_sum(db, b)
