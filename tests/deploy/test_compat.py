"""supabase/compat/auth.sql gives plain Postgres what every Supabase project has (beyond roles and auth)."""

from __future__ import annotations

import asyncpg


async def test_extensions_schema_holds_pg_stat_statements_that_collects(database_url: str) -> None:
    """Schema extensions (usable by the API roles) has pg_stat_statements, and the server collects into it."""
    conn = await asyncpg.connect(database_url)
    try:
        schema = await conn.fetchval(
            "select extnamespace::regnamespace from pg_extension where extname = 'pg_stat_statements'"
        )
        assert schema == "extensions"
        for role in ("anon", "authenticated", "service_role"):
            assert await conn.fetchval("select has_schema_privilege($1, 'extensions', 'usage')", role)
        await conn.execute("select 1 as compat_probe")  # constants are normalised, names stay
        calls = await conn.fetchval(
            "select sum(calls) from extensions.pg_stat_statements where query like '%compat_probe%'"
        )
        assert calls >= 1
    finally:
        await conn.close()


async def test_supabase_realtime_publication_exists(database_url: str) -> None:
    """The publication Supabase Realtime reads exists, listing tables (not FOR ALL TABLES)."""
    conn = await asyncpg.connect(database_url)
    try:
        assert (
            await conn.fetchval("select puballtables from pg_publication where pubname = 'supabase_realtime'")
            is False
        )
    finally:
        await conn.close()
