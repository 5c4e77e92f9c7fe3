"""Reversals (supabase/sql/31_reversals.sql) and award reasons: one ledger row taken back by a new row.

A reversal names the row it reverses, lands in the same season and daily cap day, gives back the cap
usage and the earned points, is idempotent, and cannot itself be reversed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from tests.helpers import award, new_profile
from tests.sql.engine import T0, as_service, cached_totals, ledger_rows, ledger_totals
from xpbase.db import Database, member_claims
from xpbase.errors import DomainError
from xpbase.models.engine import ReversalReceipt


async def make_admin(db: Database) -> UUID:
    pid = await new_profile(db, "Admin")
    await as_service(db, "update public.profiles set role = 'admin' where id = $1", pid)
    return pid


async def reverse(db: Database, ledger_id: int, reason: str = "fraud", **caller: Any) -> dict[str, Any]:
    return await db.rpc("reverse_award", ledger_id=ledger_id, reason=reason, **caller)


async def xp_totals(db: Database, pid: UUID) -> dict[str, Any]:
    """The cached XP, level, tier, layers and seasons (points are checked against the points ledger)."""
    cached = await cached_totals(db, pid)
    del cached["points"]
    return cached


async def ledger_xp_totals(db: Database, pid: UUID) -> dict[str, Any]:
    derived = await ledger_totals(db, pid)
    del derived["points"]
    return derived


async def points_ledger_sum(db: Database, pid: UUID) -> int:
    return await db.pool.fetchval(
        "select coalesce(sum(amount), 0)::bigint from public.points_ledger where profile_id = $1", pid
    )


async def test_a_reversal_takes_back_xp_season_score_and_points_and_names_the_row(db: Database) -> None:
    """Reversing a 300 XP award leaves the member where they were before it, with the row kept."""
    pid = await new_profile(db, "Target")
    await award(db, pid, "event_attendance", "keep", amount=120, occurred_at=T0)
    before = await xp_totals(db, pid)
    points_before = (await cached_totals(db, pid))["points"]
    first = await award(db, pid, "event_attendance", "bad", amount=300, occurred_at=T0 + timedelta(hours=1))
    assert first["level"] > before["level"]

    answer = await reverse(db, first["ledger_id"], reason="  duplicate claim ")
    receipt = ReversalReceipt.model_validate(answer)
    assert (receipt.granted, receipt.reverses_id) == (-300, first["ledger_id"])
    assert receipt.correction == "reverse_award"
    assert (receipt.actor_role, receipt.points_reversed, receipt.replayed) == ("service_role", 300, False)
    assert receipt.season_id == first["season_id"]
    assert await xp_totals(db, pid) == before == await ledger_xp_totals(db, pid)
    cached = await cached_totals(db, pid)
    assert cached["points"] == points_before == await points_ledger_sum(db, pid)

    rows = await ledger_rows(db, pid)
    assert [r["idempotency_key"] for r in rows] == ["keep", "bad", f"reverse:{first['ledger_id']}"]
    last = rows[-1]
    assert (last["amount"], last["reverses_id"]) == (-300, first["ledger_id"])
    assert last["reason"] == "duplicate claim"
    assert (last["occurred_at"], last["season_id"]) == (rows[1]["occurred_at"], rows[1]["season_id"])


async def test_reversing_twice_answers_the_first_receipt_and_credits_nothing(db: Database) -> None:
    """The second call (with any reason) replays; the ledger holds one reversal."""
    pid = await new_profile(db)
    first = await award(db, pid, "event_attendance", "a", amount=200, occurred_at=T0)
    one = await reverse(db, first["ledger_id"], reason="first")
    two = await reverse(db, first["ledger_id"], reason="second thoughts")
    assert two["replayed"] is True
    del one["replayed"], two["replayed"]
    assert two == one
    rows = await ledger_rows(db, pid)
    assert [r["amount"] for r in rows] == [200, -200]
    assert (await cached_totals(db, pid))["xp"] == 0


async def test_a_reversal_cannot_be_reversed_and_a_row_granting_nothing_cannot_either(db: Database) -> None:
    """XPREV for a reversal row and for a cooldown row (0 XP); the ledger is unchanged by either."""
    pid = await new_profile(db)
    first = await award(db, pid, "message", "m1", occurred_at=T0)
    held = await award(db, pid, "message", "m2", occurred_at=T0 + timedelta(seconds=10))
    assert held["granted"] == 0
    reversal = await reverse(db, first["ledger_id"])
    rows = await ledger_rows(db, pid)
    with pytest.raises(DomainError) as err:
        await reverse(db, reversal["ledger_id"])
    assert err.value.error.sqlstate == "XPREV"
    with pytest.raises(DomainError) as err:
        await reverse(db, held["ledger_id"])
    assert err.value.error.sqlstate == "XPREV"
    assert await ledger_rows(db, pid) == rows


async def test_unknown_rows_bad_reasons_and_members_are_refused(db: Database) -> None:
    """XPLGU for a missing row, XPBAD for a missing or overlong reason, 42501 for a member who is no admin."""
    pid = await new_profile(db)
    first = await award(db, pid, "event_attendance", "a", amount=50, occurred_at=T0)
    with pytest.raises(DomainError) as err:
        await reverse(db, 10**12)
    assert err.value.error.sqlstate == "XPLGU"
    for reason in ("", "   ", "x" * 501):
        with pytest.raises(DomainError) as err:
            await reverse(db, first["ledger_id"], reason=reason)
        assert err.value.error.sqlstate == "XPBAD"
    with pytest.raises(DomainError) as err:
        await reverse(db, first["ledger_id"], role="authenticated", claims=member_claims(pid))
    assert err.value.error.sqlstate == "42501"
    assert [r["amount"] for r in await ledger_rows(db, pid)] == [50]


async def test_an_admin_member_reverses_with_themself_as_actor(db: Database) -> None:
    """An admin's reversal records their profile as actor and 'admin' as actor role."""
    admin, pid = await make_admin(db), await new_profile(db)
    first = await award(db, pid, "event_attendance", "a", amount=80, occurred_at=T0)
    receipt = await reverse(db, first["ledger_id"], role="authenticated", claims=member_claims(admin))
    assert (receipt["actor_id"], receipt["actor_role"]) == (str(admin), "admin")
    assert (await ledger_rows(db, pid))[-1]["actor_id"] == admin


async def test_the_daily_cap_usage_comes_back(db: Database) -> None:
    """Voice minutes against a 30 XP cap: the fourth is held; after a reversal the fifth earns again."""
    await as_service(db, "update public.cap_groups set daily_cap = 30 where slug = 'discord'")
    pid = await new_profile(db)
    receipts = [
        await award(db, pid, "voice_minute", f"v{i}", occurred_at=T0 + timedelta(minutes=i)) for i in range(4)
    ]
    assert [r["granted"] for r in receipts] == [10, 10, 10, 0]
    await reverse(db, receipts[0]["ledger_id"])
    fifth = await award(db, pid, "voice_minute", "v5", occurred_at=T0 + timedelta(minutes=5))
    assert (fifth["granted"], fifth["cap"]["used"]) == (10, 30)


async def test_layer_xp_never_goes_below_zero(db: Database) -> None:
    """When a correction already took most of an award, the reversal takes what is left (floored)."""
    pid = await new_profile(db)
    first = await award(db, pid, "event_attendance", "a", amount=300, occurred_at=T0)
    await db.rpc("admin_adjust_xp", profile_id=pid, amount=-250, reason="partly wrong", idempotency_key="c1")
    receipt = await reverse(db, first["ledger_id"])
    assert (receipt["granted"], receipt["floored"], receipt["total_xp"]) == (-50, True, 0)
    assert await xp_totals(db, pid) == await ledger_xp_totals(db, pid)


async def test_reversing_a_correction_down_gives_the_xp_back_without_minting_points(db: Database) -> None:
    """A reversed removal credits the XP again; points are earned by awards only, so none appear."""
    pid = await new_profile(db)
    await award(db, pid, "event_attendance", "a", amount=300, occurred_at=T0)
    points = (await cached_totals(db, pid))["points"]
    down = await db.rpc("admin_adjust_xp", profile_id=pid, amount=-100, reason="oops", idempotency_key="c1")
    receipt = await reverse(db, down["ledger_id"])
    assert (receipt["granted"], receipt["total_xp"], receipt["points_reversed"]) == (100, 300, 0)
    assert (await cached_totals(db, pid))["points"] == points


async def test_points_already_spent_stay_spent(db: Database) -> None:
    """The reversal takes back at most the balance: 300 earned, 250 spent, 50 taken back."""
    pid = await new_profile(db)
    first = await award(db, pid, "event_attendance", "a", amount=300, occurred_at=T0)
    await db.rpc("admin_adjust_points", profile_id=pid, amount=-250, reason="spent", idempotency_key="p1")
    receipt = await reverse(db, first["ledger_id"])
    assert (receipt["points_reversed"], receipt["points"]) == (50, 0)
    assert await points_ledger_sum(db, pid) == 0 == (await cached_totals(db, pid))["points"]


async def test_the_database_refuses_a_second_reversal_row(db: Database) -> None:
    """reverses_id is unique: even a hand-written second reversal row is refused."""
    pid = await new_profile(db)
    first = await award(db, pid, "event_attendance", "a", amount=60, occurred_at=T0)
    await reverse(db, first["ledger_id"])
    with pytest.raises(asyncpg.UniqueViolationError):
        await db.pool.execute(
            "insert into public.xp_ledger (profile_id, activity_slug, layer_slug, amount, occurred_at,"
            " idempotency_key, actor_role, reverses_id) values ($1, 'event_attendance', 'reality', -60, $2,"
            " 'second', 'service_role', $3)",
            pid,
            T0,
            first["ledger_id"],
        )


async def test_an_award_keeps_its_reason_and_the_key_with_another_reason_is_refused(db: Database) -> None:
    """award_xp's reason is stored on the row and joins the request; without one, old requests still match."""
    pid = await new_profile(db)
    receipt = await award(db, pid, "event_attendance", "r1", amount=40, occurred_at=T0, reason=" Hackathon ")
    assert (await ledger_rows(db, pid))[-1]["reason"] == "Hackathon"
    again = await award(db, pid, "event_attendance", "r1", amount=40, occurred_at=T0, reason=" Hackathon ")
    assert again["replayed"] is True and again["ledger_id"] == receipt["ledger_id"]
    with pytest.raises(DomainError) as err:
        await award(db, pid, "event_attendance", "r1", amount=40, occurred_at=T0, reason="Other")
    assert err.value.error.sqlstate == "XPIDM"
    plain = await award(db, pid, "event_attendance", "r2", amount=40, occurred_at=T0)
    assert "reason" not in (await ledger_rows(db, pid))[-1]["request"]
    assert (await award(db, pid, "event_attendance", "r2", amount=40, occurred_at=T0))["ledger_id"] == plain[
        "ledger_id"
    ]
    for reason in ("", "x" * 501):
        with pytest.raises(DomainError) as err:
            await award(db, pid, "event_attendance", "r3", amount=40, occurred_at=T0, reason=reason)
        assert err.value.error.sqlstate == "XPBAD"


async def test_a_batch_item_may_carry_a_reason(db: Database) -> None:
    """service_role_award_xp_batch passes each item's reason to award_xp."""
    pid = await new_profile(db)
    await db.pool.fetch(
        "select * from public.service_role_award_xp_batch($1::jsonb)",
        [
            {
                "profile_id": str(pid),
                "activity": "event_attendance",
                "idempotency_key": "b1",
                "amount": 20,
                "occurred_at": T0.isoformat(),
                "reason": "imported",
            }
        ],
    )
    assert (await ledger_rows(db, pid))[-1]["reason"] == "imported"
