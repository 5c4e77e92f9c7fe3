"""Supabase Auth mode (supabase/sql/82_supabase_auth.sql): GoTrue's inserts make profiles and identities."""

from __future__ import annotations

from uuid import UUID, uuid4

import asyncpg

from tests.helpers import acting_as, award, new_profile
from xpbase.db import Database

# What GoTrue writes for a new user and its identity (supabase/auth: models/user.go, models/identity.go).
GOTRUE_USER = """
insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
                        raw_app_meta_data, raw_user_meta_data, is_super_admin, created_at, updated_at,
                        is_sso_user, is_anonymous)
values ('00000000-0000-0000-0000-000000000000', $1, 'authenticated', 'authenticated', $2,
        '$2a$10$abcdefghijklmnopqrstuv', now(), $3::jsonb, $4::jsonb, null, now(), now(), false, false)
"""
GOTRUE_IDENTITY = """
insert into auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at,
                             updated_at)
values ($1, $2, $3::jsonb, $4, now(), now(), now())
"""


async def gotrue_sign_up(
    conn: asyncpg.Connection, provider: str, provider_id: str | None, email: str, meta: dict[str, str]
) -> UUID:
    """Insert a user and its identity in one transaction, the way GoTrue signs someone up."""
    user_id = uuid4()
    async with conn.transaction():
        await conn.execute(
            GOTRUE_USER,
            user_id,
            email,
            {"provider": provider, "providers": [provider]},
            meta,
        )
        identity = {"sub": provider_id or str(user_id), "email": email, "email_verified": True, **meta}
        await conn.execute(GOTRUE_IDENTITY, provider_id or str(user_id), user_id, identity, provider)
    return user_id


async def test_a_gotrue_sign_up_makes_the_profile_with_the_same_id(db: Database) -> None:
    async with db.pool.acquire() as conn:
        email_user = await gotrue_sign_up(conn, "email", None, "Grace@Example.com", {})
        github_user = await gotrue_sign_up(
            conn,
            "github",
            "583231",
            "octo@example.com",
            {"full_name": "Octo Cat", "avatar_url": "https://avatars.example/u/583231"},
        )
        rows = await conn.fetch(
            "select p.id, p.display_name, p.avatar_url, p.role, i.provider, i.subject, i.display_name as idn"
            " from public.profiles p join public.identities i on i.profile_id = p.id"
            " where p.id = any($1::uuid[]) order by i.provider",
            [email_user, github_user],
        )
    assert [tuple(r) for r in rows] == [
        (email_user, "email member", None, "member", "email", "grace@example.com", None),
        (
            github_user,
            "Octo Cat",
            "https://avatars.example/u/583231",
            "member",
            "github",
            "583231",
            "Octo Cat",
        ),
    ]


async def test_auth_uid_is_the_profile_id_in_every_policy(db: Database) -> None:
    """A GoTrue user's claims (sub = auth.users.id) read and edit their profile and earn XP like anyone."""
    async with db.pool.acquire() as conn:
        user = await gotrue_sign_up(
            conn, "discord", "80351110224678912", "nelly@example.com", {"name": "Nelly"}
        )
    await award(db, user, "event_attendance", "supa-1", amount=100)
    async with acting_as(db, "authenticated", user) as conn:
        me = await conn.fetchrow("select id, xp from public.profiles where id = auth.uid()")
        assert (me["id"], me["xp"]) == (user, 100)
        changed = await conn.fetchval("""select public.update_my_profile('{"bio": "hi"}')""")
        assert changed["bio"] == "hi"
    # The bot finds the same profile from the Discord account.
    assert (
        await db.rpc("ensure_profile", provider="discord", subject="80351110224678912", display_name="x")
        == user
    )


async def test_an_identity_of_another_profile_is_left_where_it_is(db: Database) -> None:
    """Signed in through xpbase first (discord 42), then via Supabase: the identity is not moved."""
    first = await new_profile(db, "Early", provider="discord", subject="42")
    async with db.pool.acquire() as conn:
        user = await gotrue_sign_up(conn, "discord", "42", "early@example.com", {})
        owner = await conn.fetchval(
            "select profile_id from public.identities where provider = 'discord' and subject = '42'"
        )
        assert await conn.fetchval("select count(*) from public.profiles where id = $1", user) == 1
    assert owner == first


async def test_api_roles_cannot_touch_the_auth_tables(db: Database) -> None:
    for role in ("anon", "authenticated"):
        async with acting_as(db, role, uuid4() if role == "authenticated" else None) as conn:
            try:
                await conn.fetch("select * from auth.users")
            except asyncpg.InsufficientPrivilegeError:
                continue
            raise AssertionError(f"{role} read auth.users")
