"""supabase/sql/10_profiles.sql: one profile per (provider, subject), and what an edit may store."""

from __future__ import annotations

import asyncpg
import pytest

from tests.helpers import acting_as, new_profile
from xpbase.db import Database
from xpbase.errors import DomainError


async def test_ensure_profile_makes_one_profile_per_identity(db: Database) -> None:
    """The same (provider, subject) always answers the same profile; another subject gets a new one."""
    first = await db.rpc("ensure_profile", provider="github", subject="42", display_name="  Ada  ")
    again = await db.rpc("ensure_profile", provider="github", subject="42", display_name="Someone else")
    other = await db.rpc("ensure_profile", provider="github", subject="43", display_name="Grace")
    assert first == again != other
    async with db.as_service() as conn:
        name = await conn.fetchval("select display_name from public.profiles where id = $1", first)
        count = await conn.fetchval("select count(*) from public.identities where provider = 'github'")
    assert (name, count) == ("Ada", 2)


@pytest.mark.parametrize(
    ("provider", "subject"), [("GitHub", "1"), ("", "1"), ("github", ""), ("github", "x" * 256)]
)
async def test_malformed_identities_are_refused_and_change_nothing(
    db: Database, provider: str, subject: str
) -> None:
    """A provider that is not a lowercase slug, or a subject of 0 or over 255 characters, is XPBAD."""
    with pytest.raises(DomainError) as info:
        await db.rpc("ensure_profile", provider=provider, subject=subject, display_name="X")
    assert info.value.code == "invalid_argument"
    async with db.as_service() as conn:
        assert await conn.fetchval("select count(*) from public.profiles") == 0


async def test_members_cannot_call_ensure_profile(db: Database) -> None:
    """Making profiles is the backend's: anon and members get 42501."""
    for role in ("anon", "authenticated"):
        async with acting_as(db, role) as conn:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetchval("select public.ensure_profile('github', '1', 'X')")


async def test_edits_are_trimmed_stamped_and_time_zones_checked(db: Database) -> None:
    """An edit trims the display name and stamps updated_at; a time zone that is not IANA is XPBAD."""
    pid = await new_profile(db, "Ada")
    async with db.as_service() as conn:
        before = await conn.fetchval("select updated_at from public.profiles where id = $1", pid)
    async with db.as_member(pid) as conn:
        await conn.execute(
            "update public.profiles set display_name = $2, time_zone = 'Asia/Kolkata' where id = $1",
            pid,
            "  Ada L.  ",
        )
    async with db.as_service() as conn:
        row = await conn.fetchrow(
            "select display_name, time_zone, updated_at from public.profiles where id = $1", pid
        )
    assert (row["display_name"], row["time_zone"]) == ("Ada L.", "Asia/Kolkata")
    assert row["updated_at"] > before
    with pytest.raises(DomainError) as info:
        async with db.as_member(pid) as conn:
            await conn.execute("update public.profiles set time_zone = 'Mars/Olympus' where id = $1", pid)
    assert info.value.code == "invalid_argument"
