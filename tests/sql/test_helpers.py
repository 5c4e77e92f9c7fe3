"""supabase/sql/00_helpers.sql: UTC text, who may correct XP, and the schema version."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import asyncpg
import pytest

from tests.helpers import acting_as, new_profile
from xpbase.db import Database, member_claims
from xpbase.migrate import list_migrations
from xpbase.settings import REPO_ROOT


async def test_utc_text_is_iso_8601_in_utc(db: Database) -> None:
    """private.utc_text renders a moment as YYYY-MM-DDTHH:MM:SS.ffffffZ in UTC, whatever the session zone."""
    async with db.pool.acquire() as conn:
        await conn.execute("set time zone 'Asia/Kolkata'")
        text = await conn.fetchval("select private.utc_text($1)", datetime(2026, 3, 1, 23, 30, 5, tzinfo=UTC))
        await conn.execute("reset time zone")
    assert text == "2026-03-01T23:30:05.000000Z"


async def _assert_admin(db: Database, claims: dict[str, str]) -> asyncpg.Record:
    """private.assert_admin under these claims; it is no RPC (only definer functions call it)."""
    async with db.pool.acquire() as conn, conn.transaction():
        await conn.execute("select set_config('request.jwt.claims', $1, true)", json.dumps(claims))
        return await conn.fetchrow("select * from private.assert_admin()")


async def test_assert_admin_tells_backend_admin_and_member_apart(db: Database) -> None:
    """service_role passes as itself, an admin member as admin with their id, a plain member gets 42501."""
    admin = await new_profile(db, "Admin")
    member = await new_profile(db, "Member")
    async with db.as_service() as conn:
        await conn.execute("update public.profiles set role = 'admin' where id = $1", admin)
    row = await _assert_admin(db, {"role": "service_role"})
    assert (row["actor_id"], row["actor_role"]) == (None, "service_role")
    row = await _assert_admin(db, member_claims(admin))
    assert (row["actor_id"], row["actor_role"]) == (admin, "admin")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await _assert_admin(db, member_claims(member))
    async with acting_as(db, "authenticated", admin) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetchrow("select * from private.assert_admin()")


async def test_schema_version_is_the_newest_migration(db: Database) -> None:
    """public.schema_version answers the newest applied migration's version; service_role only."""
    newest = list_migrations(REPO_ROOT / "supabase")[-1].version
    assert await db.rpc("schema_version") == newest
    async with acting_as(db, "anon") as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetchval("select public.schema_version()")
