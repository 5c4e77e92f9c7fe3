"""The points ledger: earned with XP, season rewards, admin corrections; balance = ledger sum, never < 0."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import pytest

from tests.helpers import award, new_profile
from tests.sql.engine import T0, as_service
from xpbase.db import Database, member_claims
from xpbase.errors import DomainError
from xpbase.models.economy import PointsChange, PointsStatement


async def make_admin(db: Database, name: str = "Admin") -> UUID:
    pid = await new_profile(db, name)
    await as_service(db, "update public.profiles set role = 'admin' where id = $1", pid)
    return pid


async def balances_match_ledger(db: Database) -> list[Any]:
    """Profiles whose cached points differ from their points ledger sum (empty when all agree)."""
    return list(
        await db.pool.fetch(
            "select p.id, p.points, coalesce(sum(l.amount), 0) as ledger from public.profiles p"
            " left join public.points_ledger l on l.profile_id = p.id"
            " group by p.id having p.points <> coalesce(sum(l.amount), 0)"
        )
    )


async def test_points_earned_with_xp_are_ledger_rows_linked_to_the_award(db: Database) -> None:
    """An award that grants 300 XP appends one 'earned' row of 300 points pointing at its XP ledger row."""
    pid = await new_profile(db, "Earner")
    receipt = await award(db, pid, "event_attendance", "e1", amount=300)
    rows = await db.pool.fetch("select * from public.points_ledger where profile_id = $1", pid)
    assert [(r["kind"], r["amount"], r["balance_after"], r["xp_ledger_id"]) for r in rows] == [
        ("earned", 300, 300, receipt["ledger_id"])
    ]
    await award(db, pid, "event_attendance", "e1", amount=300)  # replay: nothing new
    assert await db.pool.fetchval("select count(*) from public.points_ledger where profile_id = $1", pid) == 1
    assert await balances_match_ledger(db) == []


async def test_admin_corrections_add_and_remove_points_with_actor_and_reason(db: Database) -> None:
    """/addpoints and /removepoints: ledger rows naming the admin; removing more than held floors at zero."""
    admin = await make_admin(db)
    pid = await new_profile(db, "Target")
    added = PointsChange.model_validate(
        await db.rpc(
            "service_role_admin_adjust_points",
            actor_id=admin,
            profile_id=pid,
            amount=250,
            reason="won the quiz",
            idempotency_key="k1",
        )
    )
    assert (added.amount, added.balance, added.actor_id, added.floored) == (250, 250, admin, False)
    again = await db.rpc(
        "service_role_admin_adjust_points",
        actor_id=admin,
        profile_id=pid,
        amount=250,
        reason="won the quiz",
        idempotency_key="k1",
    )
    assert again["replayed"] is True and again["balance"] == 250
    removed = PointsChange.model_validate(
        await db.rpc(
            "admin_adjust_points",
            role="authenticated",
            claims=member_claims(admin),
            profile_id=pid,
            amount=-400,
            reason="spam",
            idempotency_key="k2",
        )
    )
    assert (removed.amount, removed.balance, removed.floored, removed.actor_role) == (-250, 0, True, "admin")
    assert await db.pool.fetchval("select xp from public.profiles where id = $1", pid) == 0
    assert await balances_match_ledger(db) == []


async def test_a_member_cannot_correct_points(db: Database) -> None:
    """A member without the admin role is refused (42501) and nothing changes."""
    member = await new_profile(db, "Member")
    with pytest.raises(DomainError) as refused:
        await db.rpc(
            "admin_adjust_points",
            role="authenticated",
            claims=member_claims(member),
            profile_id=member,
            amount=10,
            reason="me",
            idempotency_key="k",
        )
    assert refused.value.error.sqlstate == "42501"
    assert await db.pool.fetchval("select count(*) from public.points_ledger") == 0


@pytest.mark.parametrize(
    ("amount", "reason", "key"), [(0, "r", "k"), (5, "", "k"), (5, "r", ""), (200_000_000, "r", "k")]
)
async def test_bad_corrections_are_refused(db: Database, amount: int, reason: str, key: str) -> None:
    """Zero or huge amounts, an empty reason or key: XPBAD, nothing written."""
    pid = await new_profile(db, "Target")
    with pytest.raises(DomainError) as refused:
        await db.rpc("admin_adjust_points", profile_id=pid, amount=amount, reason=reason, idempotency_key=key)
    assert refused.value.error.sqlstate == "XPBAD"
    assert await db.pool.fetchval("select count(*) from public.points_ledger") == 0


async def test_same_key_with_another_amount_is_refused(db: Database) -> None:
    """Reusing a correction key for another amount is XPIDM."""
    pid = await new_profile(db, "Target")
    await db.rpc("admin_adjust_points", profile_id=pid, amount=5, reason="r", idempotency_key="k")
    with pytest.raises(DomainError) as refused:
        await db.rpc("admin_adjust_points", profile_id=pid, amount=6, reason="r", idempotency_key="k")
    assert refused.value.error.sqlstate == "XPIDM"


async def test_statement_pages_newest_first_and_is_private(db: Database) -> None:
    """points_statement: the balance and entries newest first, paged; another member's is 42501."""
    pid = await new_profile(db, "Reader")
    other = await new_profile(db, "Other")
    for i in range(3):
        await db.rpc(
            "admin_adjust_points", profile_id=pid, amount=10 + i, reason=f"r{i}", idempotency_key=f"k{i}"
        )
    page = PointsStatement.model_validate(
        await db.rpc("points_statement", role="authenticated", claims=member_claims(pid), size=2)
    )
    assert page.balance == 33 and [e.amount for e in page.entries] == [12, 11]
    rest = PointsStatement.model_validate(
        await db.rpc(
            "points_statement",
            role="authenticated",
            claims=member_claims(pid),
            size=2,
            before_id=page.next_before_id,
        )
    )
    assert [e.amount for e in rest.entries] == [10] and rest.next_before_id is None
    with pytest.raises(DomainError) as refused:
        await db.rpc("points_statement", role="authenticated", claims=member_claims(other), profile_id=pid)
    assert refused.value.error.sqlstate == "42501"


async def test_season_reward_points_are_ledger_rows(db: Database) -> None:
    """finalize_seasons credits reward points as one season_reward row per winner, once."""
    pid = await new_profile(db, "Winner")
    await award(db, pid, "event_attendance", "s1", amount=100, occurred_at=T0)
    await db.rpc("finalize_seasons")
    await db.rpc("finalize_seasons")
    rows = await db.pool.fetch(
        "select kind, amount from public.points_ledger where profile_id = $1 and kind = 'season_reward'", pid
    )
    assert [(r["kind"], r["amount"]) for r in rows] == [("season_reward", 500)]  # seed: rank 1 of reality
    assert await balances_match_ledger(db) == []


async def test_the_points_ledger_is_append_only(db: Database) -> None:
    """Even the table owner cannot update or delete points ledger rows (XPLED)."""
    pid = await new_profile(db, "Target")
    await db.rpc("admin_adjust_points", profile_id=pid, amount=5, reason="r", idempotency_key="k")
    for sql in ("update public.points_ledger set amount = 6", "delete from public.points_ledger"):
        with pytest.raises(asyncpg.PostgresError) as refused:
            await db.pool.execute(sql)
        assert refused.value.sqlstate == "XPLED"
