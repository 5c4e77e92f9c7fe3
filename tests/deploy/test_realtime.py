"""Migration 20261130170000_realtime_publication: what supabase-js's postgres_changes can subscribe to."""

from __future__ import annotations

import asyncpg

from xpbase.settings import REPO_ROOT

MIGRATION = REPO_ROOT / "supabase" / "migrations" / "20261130170000_realtime_publication.sql"
PUBLISHED = "select tablename from pg_publication_tables where pubname = 'supabase_realtime' order by 1"


async def test_frontend_tables_are_published_and_keep_rls(database_url: str) -> None:
    """notifications, chat_messages and profiles are in supabase_realtime, with row-level security on."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            """
            select format('%I.%I', p.schemaname, p.tablename) as name, c.relrowsecurity as rls
            from pg_publication_tables p
            join pg_class c on c.oid = format('%I.%I', p.schemaname, p.tablename)::regclass
            where p.pubname = 'supabase_realtime'
            order by 1
            """
        )
    finally:
        await conn.close()
    assert [(r["name"], r["rls"]) for r in rows] == [
        ("public.chat_messages", True),
        ("public.notifications", True),
        ("public.profiles", True),
    ]


async def test_migration_skips_published_tables_and_a_missing_publication(database_url: str) -> None:
    """Run again it adds nothing and raises nothing; without the publication it creates none."""
    sql = MIGRATION.read_text()
    conn = await asyncpg.connect(database_url)
    try:
        before = await conn.fetch(PUBLISHED)
        await conn.execute(sql)
        assert await conn.fetch(PUBLISHED) == before

        await conn.execute("drop publication supabase_realtime")
        await conn.execute(sql)
        assert await conn.fetchval("select count(*) from pg_publication") == 0
    finally:
        await conn.close()
