"""Roles as data (supabase/sql/12_roles.sql): permissions, audited role changes, and who is the backend.

The role matrix calls every privileged RPC as every role (plus anon, the
backend and a forged request: role authenticated whose claims say
service_role) and expects exactly the listed ones to pass.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import pytest

from tests.helpers import acting_as, award, new_profile
from tests.sql.engine import T0, as_service
from xpbase.db import Database, member_claims, switch_role
from xpbase.errors import DomainError

ROLES = ("member", "student", "company", "university", "professional", "moderator", "admin")

#: Every privileged RPC ($1: the target member) and who may call it besides the backend.
PRIVILEGED: dict[str, tuple[str, frozenset[str]]] = {
    "admin_adjust_xp": (
        "select public.admin_adjust_xp($1, 10, 'matrix', 'matrix-adj')",
        frozenset({"admin"}),
    ),
    "admin_set_level": ("select public.admin_set_level($1, 3, 'matrix')", frozenset({"admin"})),
    "admin_reset_xp": ("select public.admin_reset_xp($1, 'matrix')", frozenset({"admin"})),
    "admin_adjust_points": (
        "select public.admin_adjust_points($1, 10, 'matrix', 'matrix-pts')",
        frozenset({"admin"}),
    ),
    "admin_set_role": ("select public.admin_set_role($1, 'student', 'matrix')", frozenset({"admin"})),
    "dead_deliveries": (
        "select public.dead_deliveries(10, null) where $1::uuid is not null",
        frozenset({"admin"}),
    ),
    "redemption_queue": (
        "select public.redemption_queue('pending', 25, null) where $1::uuid is not null",
        frozenset({"admin", "moderator"}),
    ),
    "moderate_warn": ("select public.moderate('warn', $1, 'matrix')", frozenset({"admin", "moderator"})),
    "moderate_suspend": (
        "select public.moderate('suspend', $1, 'matrix', now() + interval '1 day')",
        frozenset({"admin", "moderator"}),
    ),
    "moderate_unsuspend": (
        "select public.moderate('unsuspend', $1, 'matrix')",
        frozenset({"admin", "moderator"}),
    ),
    "moderation_record": ("select public.moderation_record($1)", frozenset({"admin", "moderator"})),
    "xp_timeline_of_another": ("select count(*) from public.xp_timeline($1)", frozenset()),
}


async def with_role(db: Database, role: str, name: str | None = None) -> UUID:
    """A committed profile holding ``role``."""
    pid = await new_profile(db, name or role.title())
    if role != "member":
        await as_service(db, "update public.profiles set role = $2 where id = $1", pid, role)
    return pid


@pytest.fixture
async def cast(db: Database) -> dict[str, UUID]:
    """One profile per role, and a target member with some XP."""
    people = {role: await with_role(db, role) for role in ROLES}
    people["target"] = await new_profile(db, "Target")
    await award(db, people["target"], "event_attendance", "target-1", amount=300, occurred_at=T0)
    return people


async def set_role_as(db: Database, actor: UUID, target: UUID, new_role: str, reason: str) -> dict[str, Any]:
    """admin_set_role as the signed-in ``actor``, committed."""
    async with db.as_member(actor) as conn:
        answer: dict[str, Any] = await conn.fetchval(
            "select public.admin_set_role($1, $2, $3)", target, new_role, reason
        )
    return answer


async def attempt(db: Database, role: str, claims: dict[str, Any], sql: str, target: UUID) -> bool:
    """True when ``sql`` runs as ``role`` with ``claims``; False on 42501. Always rolled back."""
    async with db.pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await switch_role(conn, role, claims)
            await conn.fetch(sql, target)
            return True
        except asyncpg.InsufficientPrivilegeError:
            return False
        finally:
            await tx.rollback()


CALLERS = (*ROLES, "anon", "service_role", "forged")


@pytest.mark.parametrize("call", sorted(PRIVILEGED))
async def test_role_matrix_every_role_against_every_privileged_rpc(
    db: Database, cast: dict[str, UUID], call: str
) -> None:
    """Each role passes exactly the RPCs its permissions allow; anon and forged claims pass none."""
    sql, allowed = PRIVILEGED[call]
    outcome: dict[str, bool] = {}
    for caller in CALLERS:
        if caller == "anon":
            role, claims = "anon", {"role": "anon"}
        elif caller == "service_role":
            role, claims = "service_role", {"role": "service_role"}
        elif caller == "forged":
            # What issue 18 found: a request running as authenticated whose claims say service_role.
            role, claims = "authenticated", {**member_claims(cast["member"]), "role": "service_role"}
        else:
            role, claims = "authenticated", member_claims(cast[caller])
        outcome[caller] = await attempt(db, role, claims, sql, cast["target"])
    expected = {caller: caller in allowed or caller == "service_role" for caller in CALLERS}
    assert outcome == expected


async def test_forged_service_role_claims_do_not_pass_the_privilege_checks(db: Database) -> None:
    """authenticated + claims role service_role: admin_adjust_xp, act_for, another's timeline refused."""
    member, target = await new_profile(db, "Forger"), await new_profile(db, "Victim")
    forged = {**member_claims(member), "role": "service_role"}
    for sql in (
        "select public.admin_adjust_xp($1, 1000, 'forged', 'forged-1')",
        "select public.service_role_admin_adjust_xp($1, $1, 1000, 'forged', 'forged-2')",
        "select private.act_for($1)",
        "select private.assert_can_read_ledger($1)",
        "select private.assert_admin() where $1::uuid is not null",
    ):
        async with acting_as(db, "authenticated", member) as conn:
            await switch_role(conn, "authenticated", forged)
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetchval(sql, target)
    async with acting_as(db, "authenticated", member) as conn:
        await switch_role(conn, "authenticated", forged)
        assert await conn.fetchval("select private.is_service_role()") is False
    async with acting_as(db, "service_role") as conn:
        assert await conn.fetchval("select private.is_service_role()") is True


async def test_role_change_is_audited_and_reaches_the_next_session(db: Database) -> None:
    """An admin's change writes one role_changes row (who, from, to, why); sign-in answers the new role."""
    admin, target = await with_role(db, "admin"), await new_profile(db, "Learner")
    answer = await set_role_as(db, admin, target, "student", "  Enrolled  ")
    assert (answer["from_role"], answer["role"], answer["changed"]) == ("member", "student", True)
    async with db.as_service() as conn:
        rows = await conn.fetch(
            "select from_role, to_role, actor_id, actor_role, reason"
            " from public.role_changes where profile_id = $1",
            target,
        )
    assert [tuple(r) for r in rows] == [("member", "student", admin, "admin", "Enrolled")]
    assert (await db.pool.fetchval("select private.profile_summary($1)", target))["role"] == "student"
    # Same role again: nothing new is written.
    again = await set_role_as(db, admin, target, "student", "again")
    assert again["changed"] is False


@pytest.mark.parametrize(
    ("actor", "new_role", "target_self", "sqlstate"),
    [
        ("admin", "wizard", False, "XPROL"),
        ("admin", "", False, "XPROL"),
        ("member", "admin", True, "42501"),  # a member changing their own role
        ("moderator", "admin", False, "42501"),  # a moderator promoting someone to admin
        ("admin", "member", True, "42501"),  # nobody changes their own role, admins neither
    ],
)
async def test_bad_role_changes_are_refused_and_change_nothing(
    db: Database, actor: str, new_role: str, target_self: bool, sqlstate: str
) -> None:
    """Unknown roles, own roles and non-admins are refused; no profile or audit row changes."""
    actor_id = await with_role(db, actor)
    target = actor_id if target_self else await new_profile(db, "Someone")
    with pytest.raises(DomainError) as caught:
        await set_role_as(db, actor_id, target, new_role, "try")
    assert caught.value.error.sqlstate == sqlstate
    async with db.as_service() as conn:
        assert await conn.fetchval("select count(*) from public.role_changes") == 0
        assert await conn.fetchval("select role from public.profiles where id = $1", target) == (
            actor if target_self else "member"
        )


async def test_grant_admin_is_audited(db: Database) -> None:
    """`xpbase admin grant` (service_role_grant_admin) writes a role change by the backend."""
    pid = await new_profile(db, "First")
    grant = await db.rpc("service_role_grant_admin", profile_id=pid)
    assert (grant["role"], grant["changed"]) == ("admin", True)
    async with db.as_service() as conn:
        row = await conn.fetchrow("select * from public.role_changes where profile_id = $1", pid)
    assert (row["from_role"], row["to_role"], row["actor_id"], row["actor_role"]) == (
        "member",
        "admin",
        None,
        "service_role",
    )
    assert (await db.rpc("service_role_grant_admin", profile_id=pid))["changed"] is False


async def test_permissions_are_data_and_members_read_their_own(db: Database) -> None:
    """my_permissions lists the role's permissions; a moderator may not manage roles, an admin may."""
    moderator, admin, member = [await with_role(db, r) for r in ("moderator", "admin", "member")]
    mod, adm, mem = [
        (await db.rpc("my_permissions", role="authenticated", claims=member_claims(p)))["permissions"]
        for p in (moderator, admin, member)
    ]
    assert "warn_members" in mod and "suspend_members" in mod and "manage_roles" not in mod
    assert {"manage_roles", "manage_rules", "correct_xp", "approve_redemptions"} <= set(adm)
    assert mem == []
    async with acting_as(db, "authenticated", member) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("insert into public.role_permissions values ('member', 'manage_roles')")
