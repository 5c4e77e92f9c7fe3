"""Schema-wide rules, read from pg_catalog, and a second migrate that changes nothing.

Splinter's lints in test form: RLS on every table, no security definer in the
exposed schema, a pinned empty search_path on every definer function, a
comment on everything callers see, no execute for PUBLIC.
"""

from __future__ import annotations

import difflib
import subprocess

from tests.helpers import award, new_profile
from xpbase.db import Database
from xpbase.embedded import pg_bin
from xpbase.migrate import list_migrations, migrate
from xpbase.settings import REPO_ROOT

#: The schemas xpbase owns: the exposed API and the private implementation.
OUR_SCHEMAS = ["public", "private"]
API_ROLES = ["anon", "authenticated", "service_role"]
TABLE_PRIVILEGES = "select, insert, update, delete, truncate, references, trigger"

TABLES_SQL = """
select n.nspname || '.' || c.relname as name, c.relkind::text as relkind, c.relrowsecurity as rls,
       obj_description(c.oid, 'pg_class') as comment, c.reloptions
  from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
 where n.nspname = any($1) and c.relkind in ('r', 'p', 'v', 'm', 'f')
 order by 1
"""

FUNCTIONS_SQL = """
select n.nspname || '.' || p.proname || '(' || pg_catalog.oidvectortypes(p.proargtypes) || ')' as signature,
       n.nspname as schema, p.prosecdef as definer, p.proconfig as config,
       obj_description(p.oid, 'pg_proc') as comment,
       exists (select 1 from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) acl
                where acl.grantee = 0 and acl.privilege_type = 'EXECUTE') as public_execute
  from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
 where n.nspname = any($1)
 order by 1
"""


async def test_row_level_security_is_enabled_on_every_table(db: Database) -> None:
    """Every table in public and private has row-level security enabled."""
    tables = await db.pool.fetch(TABLES_SQL, OUR_SCHEMAS)
    assert len([t for t in tables if t["relkind"] in ("r", "p")]) > 1
    assert [t["name"] for t in tables if t["relkind"] in ("r", "p") and not t["rls"]] == []


async def test_views_in_public_run_as_the_caller(db: Database) -> None:
    """Every view in public is security_invoker, so the caller's RLS applies through it."""
    views = [t for t in await db.pool.fetch(TABLES_SQL, ["public"]) if t["relkind"] in ("v", "m")]
    assert [v["name"] for v in views if "security_invoker=true" not in (v["reloptions"] or [])] == []


async def test_no_security_definer_function_in_public(db: Database) -> None:
    """public holds only security-invoker functions; definer implementations live in private."""
    functions = await db.pool.fetch(FUNCTIONS_SQL, OUR_SCHEMAS)
    assert any(f["definer"] for f in functions), "the engine's definer functions are gone: query is wrong"
    assert [f["signature"] for f in functions if f["schema"] == "public" and f["definer"]] == []


async def test_every_security_definer_function_pins_an_empty_search_path(db: Database) -> None:
    """Every security-definer function in public and private runs with search_path set to ''."""
    functions = await db.pool.fetch(FUNCTIONS_SQL, OUR_SCHEMAS)
    assert any(f["definer"] for f in functions)
    unpinned = [
        f["signature"] for f in functions if f["definer"] and 'search_path=""' not in (f["config"] or [])
    ]
    assert unpinned == []


# Functions that may not pin search_path, and why. Only a security-invoker SQL function that Postgres must
# inline into its caller's statement (a SET clause forbids inlining) belongs here, and only when every name in
# its body is schema-qualified: it runs as its caller, under its caller's search_path, so it can reach nothing
# its caller could not.
INLINED: dict[str, str] = {
    # leaderboard_around's window per board (63_leaderboard_ranks.sql): inlined, its plan holds one board;
    # with search_path set it is a separate call, and around's server time doubled (1.45 -> 2.87 ms at
    # 1,000,000 profiles, bench/leaderboard.py, 2026-12-01).
    "public.leaderboard_around_rows(text, text, bigint, text, uuid, integer)": "s",
    # leaderboard_rank's rank per board (63_leaderboard_ranks.sql), inlined for the same reason: its plan
    # holds one board instead of the three of leaderboard_entries (tests/sql/test_leaderboard_ranks.py checks
    # it is never called; figures in bench/README.md, 2026-12-01 "rank per board").
    "public.leaderboard_rank_row(text, text, bigint, text, uuid)": "s",
    # A badge's filters on a ledger row (33_badges.sql), inlined into the badge trigger's candidate query: as
    # a call per (row, badge) pair it cost about 7 us a pair (bench/replay.py --profile, 2026-12-01).
    "private.badge_applies(badges, xp_ledger)": "i",
    # The badge kinds a row's receipt decides alone (33_badges.sql), inlined into private.badge_met and ahead
    # of it in the badge trigger, so most candidate pairs need no PL/pgSQL call.
    "private.badge_met_by_receipt(badges, xp_ledger)": "i",
}


async def test_every_function_pins_its_search_path(db: Database) -> None:
    """Every function in public and private sets search_path (splinter 0011, function_search_path_mutable),
    but the inlined invoker functions of INLINED, which must be SQL, security invoker and of the volatility
    INLINED gives (s stable, i immutable)."""
    functions = await db.pool.fetch(FUNCTIONS_SQL, OUR_SCHEMAS)
    assert len(functions) > 1
    mutable = [
        f["signature"] for f in functions if not any(c.startswith("search_path=") for c in f["config"] or [])
    ]
    assert sorted(set(mutable) - set(INLINED)) == []
    for signature, volatility in INLINED.items():
        row = await db.pool.fetchrow(
            "select l.lanname, p.prosecdef, p.provolatile::text, p.proconfig from pg_proc p"
            " join pg_language l on l.oid = p.prolang where p.oid = $1::regprocedure",
            signature,
        )
        assert row is not None, f"{signature} is gone: drop it from INLINED"
        assert (row["lanname"], row["prosecdef"], row["provolatile"], row["proconfig"]) == (
            "sql",
            False,
            volatility,
            None,
        )


async def test_every_table_has_a_comment(db: Database) -> None:
    """Every table and view in public and private says what it holds (comment on table)."""
    tables = await db.pool.fetch(TABLES_SQL, OUR_SCHEMAS)
    assert len(tables) > 1
    assert [t["name"] for t in tables if not (t["comment"] or "").strip()] == []


async def test_every_public_function_has_a_comment(db: Database) -> None:
    """Every function callers can see (public) has a comment."""
    functions = await db.pool.fetch(FUNCTIONS_SQL, ["public"])
    assert len(functions) > 1
    assert [f["signature"] for f in functions if not (f["comment"] or "").strip()] == []


async def test_public_cannot_execute_any_of_our_functions(db: Database) -> None:
    """No function in public or private is executable by PUBLIC (a null ACL counts: it is the default)."""
    functions = await db.pool.fetch(FUNCTIONS_SQL, OUR_SCHEMAS)
    assert len(functions) > 1
    assert [f["signature"] for f in functions if f["public_execute"]] == []


async def test_functions_created_later_are_not_executable_by_api_roles(db: Database) -> None:
    """A function the migrating role adds later to public or private is executable by no API role."""
    async with db.pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            for schema in OUR_SCHEMAS:
                await conn.execute(
                    f"create function {schema}.zz_probe() returns integer language sql as 'select 1'"
                )
            rows = await conn.fetch(
                """
                select p.oid::regprocedure::text as probe, r.role
                  from pg_catalog.pg_proc p cross join unnest($1::text[]) as r(role)
                 where p.proname = 'zz_probe' and has_function_privilege(r.role, p.oid, 'EXECUTE')
                """,
                ["public", *API_ROLES],
            )
        finally:
            await tx.rollback()
    assert [(r["probe"], r["role"]) for r in rows] == []


async def test_tables_created_later_are_closed_to_api_roles(db: Database) -> None:
    """A table the migrating role creates later in public or private grants nothing to PUBLIC or API roles."""
    async with db.pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            for schema in OUR_SCHEMAS:
                await conn.execute(f"create table {schema}.zz_probe (id integer)")
            rows = await conn.fetch(
                """
                select c.oid::regclass::text as probe, r.role
                  from pg_catalog.pg_class c cross join unnest($1::text[]) as r(role)
                 where c.relname = 'zz_probe'
                   and has_table_privilege(r.role, c.oid, $2)
                """,
                ["public", *API_ROLES],
                TABLE_PRIVILEGES,
            )
        finally:
            await tx.rollback()
    assert [(r["probe"], r["role"]) for r in rows] == []


def pg_dump(url: str, *options: str) -> list[str]:
    """The lines of ``pg_dump <options>`` for ``url``, with a fixed \\restrict key so that runs compare."""
    result = subprocess.run(
        [str(pg_bin("pg_dump")), "--restrict-key=xpbase", *options, "--dbname", url],
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.splitlines()


def assert_same_dump(before: list[str], after: list[str], what: str) -> None:
    assert len(before) > 10, f"{what} dump is empty"
    diff = list(difflib.unified_diff(before, after, f"{what} before", f"{what} after", lineterm="", n=2))
    assert diff == [], "\n".join(diff[:200])


async def test_migrate_twice_changes_nothing(db: Database, database_url: str) -> None:
    """A second migrate on a migrated database with data applies nothing; schema and data stay the same."""
    pid = await new_profile(db, "Ada")
    await award(db, pid, "challenge_completed", "before-remigrate", amount=200)
    async with db.as_service() as conn:
        # A community's own change to a seeded row survives every later migrate.
        await conn.execute("update public.activity_types set base_xp = 20 where slug = 'message'")
    schema_before = pg_dump(database_url, "--schema-only")
    data_before = pg_dump(database_url, "--data-only")

    report = await migrate(database_url, REPO_ROOT / "supabase")

    assert report.applied == []
    assert report.compat_applied is False
    assert report.already_applied == len(list_migrations(REPO_ROOT / "supabase"))
    assert_same_dump(schema_before, pg_dump(database_url, "--schema-only"), "schema")
    assert_same_dump(data_before, pg_dump(database_url, "--data-only"), "data")
    assert any("challenge_completed" in line for line in data_before)
    async with db.as_service() as conn:
        assert await conn.fetchval("select base_xp from public.activity_types where slug = 'message'") == 20
