"""Admin corrections and the append-only ledger: new rows with actor and reason, never edits."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest

from tests.helpers import award, new_profile
from tests.sql.engine import T0, as_service, cached_totals, ledger_rows, ledger_totals
from xpbase.db import Database, member_claims
from xpbase.errors import DomainError


async def make_admin(db: Database, name: str = "Admin") -> UUID:
    """A profile whose role is admin (set as service_role)."""
    pid = await new_profile(db, name)
    await as_service(db, "update public.profiles set role = 'admin' where id = $1", pid)
    return pid


async def as_member(db: Database, member: UUID, function: str, **params: Any) -> Any:
    """Call a public function as a signed-in member."""
    return await db.rpc(function, role="authenticated", claims=member_claims(member), **params)


async def member_with_xp(db: Database) -> UUID:
    """A member with 300 reality XP and 100 cyber XP from ordinary awards."""
    pid = await new_profile(db, "Target")
    await award(db, pid, "event_attendance", "e1", amount=300, occurred_at=T0)
    await award(db, pid, "xp_purchase", "b1", amount=100, occurred_at=T0)
    return pid


async def test_service_role_adjustment_is_a_ledger_row_with_reason(db: Database) -> None:
    """A backend admin_adjust_xp adds one admin_adjustment row with actor service_role and the reason."""
    pid = await member_with_xp(db)
    before = await ledger_rows(db, pid)
    receipt = await db.rpc(
        "admin_adjust_xp", profile_id=pid, amount=250, reason="  Hackathon prize  ", idempotency_key="adj-1"
    )
    assert (receipt["granted"], receipt["total_xp"], receipt["correction"]) == (250, 650, "admin_adjust_xp")
    rows = await ledger_rows(db, pid)
    assert rows[:-1] == before
    new = rows[-1]
    assert (new["activity_slug"], new["layer_slug"], new["amount"], new["points"]) == (
        "admin_adjustment",
        "cyber",
        250,
        0,
    )
    assert (new["actor_id"], new["actor_role"], new["reason"]) == (None, "service_role", "Hackathon prize")
    assert await cached_totals(db, pid) == await ledger_totals(db, pid)


async def test_admin_member_adjustment_records_the_admin_as_actor(db: Database) -> None:
    """An admin member's correction names their profile as actor and 'admin' as actor role."""
    admin, pid = await make_admin(db), await member_with_xp(db)
    receipt = await as_member(
        db,
        admin,
        "admin_adjust_xp",
        profile_id=pid,
        amount=-50,
        reason="Spam",
        idempotency_key="adj-1",
        layer="reality",
    )
    assert (receipt["granted"], receipt["actor_id"], receipt["actor_role"]) == (-50, str(admin), "admin")
    new = (await ledger_rows(db, pid))[-1]
    assert (new["actor_id"], new["actor_role"], new["reason"], new["layer_slug"], new["amount"]) == (
        admin,
        "admin",
        "Spam",
        "reality",
        -50,
    )
    assert (await cached_totals(db, pid))["layers"] == {"reality": 250, "cyber": 100}


async def test_admin_set_level_moves_to_the_levels_threshold_with_new_rows(db: Database) -> None:
    """admin_set_level up to 11 and down to 3 writes one correction each and lands on the exact thresholds."""
    admin, pid = await make_admin(db), await member_with_xp(db)
    up = await as_member(db, admin, "admin_set_level", profile_id=pid, level=11, reason="Migrated from MEE6")
    assert (up["total_xp"], up["level"], up["tier"], up["granted"]) == (10_500, 11, "member", 10_100)
    down = await db.rpc("admin_set_level", profile_id=pid, level=3, reason="Rollback")
    assert (down["total_xp"], down["level"], down["tier"]) == (500, 3, "basic")
    rows = await ledger_rows(db, pid)
    assert [(r["amount"], r["reason"], r["actor_role"]) for r in rows[2:]] == [
        (10_100, "Migrated from MEE6", "admin"),
        (-10_000, "Rollback", "service_role"),
    ]
    assert rows[2]["actor_id"] == admin
    assert (await cached_totals(db, pid))["layers"] == {"reality": 300, "cyber": 200}
    assert await cached_totals(db, pid) == await ledger_totals(db, pid)


async def test_admin_reset_writes_one_row_per_layer_and_keeps_history(db: Database) -> None:
    """admin_reset_xp zeroes every layer with correction rows under one key; earlier rows and points stay."""
    pid = await member_with_xp(db)
    points = (await cached_totals(db, pid))["points"]
    before = await ledger_rows(db, pid)
    receipt = await db.rpc("admin_reset_xp", profile_id=pid, reason="Account sharing")
    assert (receipt["total_xp"], receipt["level"], receipt["granted"]) == (0, 1, -400)
    rows = await ledger_rows(db, pid)
    assert rows[: len(before)] == before
    resets = rows[len(before) :]
    assert sorted((r["layer_slug"], r["amount"]) for r in resets) == [("cyber", -100), ("reality", -300)]
    assert len({r["idempotency_key"] for r in resets}) == 1
    assert all(r["reason"] == "Account sharing" and r["actor_role"] == "service_role" for r in resets)
    cached = await cached_totals(db, pid)
    assert (cached["xp"], cached["layers"], cached["points"]) == (0, {}, points)


async def test_negative_adjustment_takes_from_the_largest_layer_and_stops_at_zero(db: Database) -> None:
    """Removing more XP than a member has takes the largest layer first, then the next, and floors at zero."""
    pid = await member_with_xp(db)
    partial = await db.rpc("admin_adjust_xp", profile_id=pid, amount=-350, reason="Fix", idempotency_key="a1")
    assert [(p["layer"], p["amount"]) for p in partial["layers"]] == [("reality", -300), ("cyber", -50)]
    assert (partial["total_xp"], partial["floored"]) == (50, False)
    beyond = await db.rpc("admin_adjust_xp", profile_id=pid, amount=-1000, reason="Fix", idempotency_key="a2")
    assert (beyond["granted"], beyond["total_xp"], beyond["floored"]) == (-50, 0, True)
    assert await cached_totals(db, pid) == await ledger_totals(db, pid)


async def test_admin_adjustment_is_idempotent(db: Database) -> None:
    """The same key replays the first receipt; the same key with another amount raises XPIDM."""
    pid = await member_with_xp(db)
    first = await db.rpc(
        "admin_adjust_xp", profile_id=pid, amount=10, reason="Bonus", idempotency_key="adj-1"
    )
    assert await db.rpc(
        "admin_adjust_xp", profile_id=pid, amount=10, reason="Bonus", idempotency_key="adj-1"
    ) == {**first, "replayed": True}
    with pytest.raises(DomainError) as raised:
        await db.rpc("admin_adjust_xp", profile_id=pid, amount=20, reason="Bonus", idempotency_key="adj-1")
    assert raised.value.error.sqlstate == "XPIDM"
    assert (await cached_totals(db, pid))["xp"] == 410


CORRECTIONS: dict[str, dict[str, Any]] = {
    "admin_adjust_xp": {"amount": 1000, "reason": "Self-promotion", "idempotency_key": "sneaky"},
    "admin_set_level": {"level": 50, "reason": "Self-promotion"},
    "admin_reset_xp": {"reason": "Grief"},
}


@pytest.mark.parametrize("function", CORRECTIONS)
@pytest.mark.parametrize("caller", ["member", "demoted_admin", "anon"])
async def test_corrections_are_refused_for_non_admins(db: Database, function: str, caller: str) -> None:
    """A plain member, a former admin and anon get SQLSTATE 42501 and nothing changes."""
    pid = await member_with_xp(db)
    before = await ledger_rows(db)
    member = await new_profile(db, "Mallory")
    if caller == "demoted_admin":
        member = await make_admin(db, "Former admin")
        await as_service(db, "update public.profiles set role = 'member' where id = $1", member)
    with pytest.raises(DomainError) as raised:
        if caller == "anon":
            await db.rpc(function, role="anon", profile_id=pid, **CORRECTIONS[function])
        else:
            await as_member(db, member, function, profile_id=pid, **CORRECTIONS[function])
    assert raised.value.error.sqlstate == "42501"
    assert await ledger_rows(db) == before


async def test_member_cannot_make_themselves_admin(db: Database) -> None:
    """The role column is not among the columns a member may update."""
    member = await new_profile(db, "Mallory")
    with pytest.raises(DomainError) as raised:
        async with db.as_member(member) as conn:
            await conn.execute("update public.profiles set role = 'admin' where id = $1", member)
    assert raised.value.error.sqlstate == "42501"


@pytest.mark.parametrize("level", [0, 101])
async def test_set_level_outside_the_curve_raises_xplvl(db: Database, level: int) -> None:
    """Levels that are not on the curve are refused with XPLVL."""
    pid = await member_with_xp(db)
    with pytest.raises(DomainError) as raised:
        await db.rpc("admin_set_level", profile_id=pid, level=level, reason="Out of range")
    assert raised.value.error.sqlstate == "XPLVL"
    assert len(await ledger_rows(db, pid)) == 2


@pytest.mark.parametrize(
    ("params", "sqlstate"),
    [
        ({"reason": ""}, "XPBAD"),
        ({"reason": None}, "XPBAD"),
        ({"idempotency_key": None}, "XPBAD"),
        ({"layer": "astral"}, "XPBAD"),
        ({"profile_id": None}, "XPBAD"),
        ({"profile_id": "unknown"}, "XPPRF"),
    ],
)
async def test_bad_correction_raises_and_writes_nothing(
    db: Database, params: dict[str, Any], sqlstate: str
) -> None:
    """A correction without a reason or key, to an unknown layer or profile, raises and writes nothing."""
    pid = await member_with_xp(db)
    call = {"profile_id": pid, "amount": 5, "reason": "Fix", "idempotency_key": "adj-1", **params}
    if call["profile_id"] == "unknown":
        call["profile_id"] = uuid4()
    with pytest.raises(DomainError) as raised:
        await db.rpc("admin_adjust_xp", **call)
    assert raised.value.error.sqlstate == sqlstate
    assert len(await ledger_rows(db)) == 2


@pytest.mark.parametrize(
    "statement",
    [
        "update public.xp_ledger set amount = amount + 1000",
        "update public.xp_ledger set reason = 'rewritten'",
        "delete from public.xp_ledger",
        "truncate public.xp_ledger cascade",
    ],
)
async def test_ledger_refuses_changes_even_for_its_owner(db: Database, statement: str) -> None:
    """Update, delete and truncate of ledger rows fail with XPLED even for the table's owner (a superuser)."""
    pid = await member_with_xp(db)
    before = await ledger_rows(db)
    async with db.pool.acquire() as conn:
        owner = await conn.fetchval(
            "select tableowner = current_user from pg_catalog.pg_tables where tablename = 'xp_ledger'"
        )
        assert owner is True
        with pytest.raises(asyncpg.PostgresError) as raised:
            await conn.execute(statement)
    assert raised.value.sqlstate == "XPLED"
    assert await ledger_rows(db) == before
    assert await cached_totals(db, pid) == await ledger_totals(db, pid)


@pytest.mark.parametrize(
    "statement", ["update public.xp_ledger set amount = 0", "delete from public.xp_ledger"]
)
async def test_service_role_cannot_write_the_ledger_directly(db: Database, statement: str) -> None:
    """service_role has no update or delete privilege on the ledger: only the engine writes it."""
    await member_with_xp(db)
    with pytest.raises(DomainError) as raised:
        async with db.as_service() as conn:
            await conn.execute(statement)
    assert raised.value.error.sqlstate == "42501"
