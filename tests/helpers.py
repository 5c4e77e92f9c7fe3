"""Acting as someone, the way PostgREST does: role and claims inside a transaction.

``acting_as`` opens a transaction on a raw connection, switches role and
claims, and always rolls back, so RLS tests leave nothing behind
(supabase-test-helpers' ``tests.authenticate_as``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from xpbase.db import Database, member_claims, switch_role
from xpbase.rulepacks import load_rule_pack
from xpbase.settings import REPO_ROOT


@asynccontextmanager
async def acting_as(
    db: Database, role: str, profile_id: UUID | str | None = None
) -> AsyncIterator[asyncpg.Connection]:
    """A transaction as ``role`` (anon, authenticated with ``profile_id``, service_role) that rolls back."""
    claims: dict[str, Any] = member_claims(profile_id) if role == "authenticated" else {"role": role}
    async with db.pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await switch_role(conn, role, claims)
            yield conn
        finally:
            await tx.rollback()


@asynccontextmanager
async def acting_as_custom_role(db: Database, profile_id: UUID | str) -> AsyncIterator[asyncpg.Connection]:
    """A transaction that rolls back, as a signed-in member whose JWT ``role`` claim names a custom Postgres
    role rather than ``authenticated`` (Supabase's custom access token hook may set one; PostgREST then sets
    that role). The role is made inside the transaction, granted ``authenticated``: it never outlives it."""
    role = f"xp_custom_{uuid4().hex[:12]}"
    async with db.pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute(f"create role {role} nologin; grant authenticated to {role}")
            await switch_role(conn, role, member_claims(profile_id, {"role": role}))
            yield conn
        finally:
            await tx.rollback()


async def new_profile(
    db: Database, name: str = "Member", provider: str = "discord", subject: str | None = None
) -> UUID:
    """A committed profile made through ensure_profile as service_role."""
    subject = subject or f"{name}-{id(name)}-{uuid4().hex[:8]}"
    return await db.rpc("ensure_profile", provider=provider, subject=subject, display_name=name)


async def award(db: Database, profile_id: UUID, activity: str, key: str, **params: Any) -> dict[str, Any]:
    """award_xp as service_role; returns the receipt."""
    return await db.rpc("award_xp", profile_id=profile_id, activity=activity, idempotency_key=key, **params)


async def make_public(db: Database, *profile_ids: UUID) -> None:
    """Give profiles profile_visibility public (the default is members), as each member would."""
    for profile_id in profile_ids:
        async with db.as_member(profile_id) as conn:
            await conn.execute(
                "update public.profiles set profile_visibility = 'public' where id = (select auth.uid())"
            )


async def load_career_pack(db: Database) -> None:
    """The career rule pack (supabase/rulepacks/career.sql), as ``xpbase load rulepack career`` loads it."""
    await load_rule_pack(db, REPO_ROOT / "supabase", "career")


async def wait_for_backend(db: Database, condition: str) -> int:
    """The pid of another client backend once one matches ``condition`` (SQL over pg_stat_activity, e.g.
    ``wait_event_type = 'Lock'``); polls on the pool, outside any transaction, whose snapshot of the view
    would never change."""
    while True:
        pid = await db.pool.fetchval(
            "select pid from pg_stat_activity where pid <> pg_backend_pid()"
            f" and backend_type = 'client backend' and {condition} limit 1"
        )
        if pid is not None:
            return int(pid)
        await asyncio.sleep(0.01)
