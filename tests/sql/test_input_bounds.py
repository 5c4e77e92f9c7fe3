"""Every public function's every parameter fed its type's extremes (issue 18), generated from the catalogue.

The functions and their parameters are read from ``pg_proc`` (schema public, not extension members or
trigger functions), so a new function is covered without anyone writing a test for it. Each parameter in
turn gets every extreme of its type (null, empty, 10 MB text, NUL, +-infinity, year 1 and 294276, NaN,
integer limits, deeply nested jsonb, 100,000-element arrays) while the other parameters keep their
defaults or a plain value of their type. Each function is called as the narrowest API role that may run it
(an admin member when ``authenticated`` may, else service_role, else anon), as PostgREST would.

A call must succeed or fail clearly: an engine SQLSTATE (``XP...``), a data exception (class 22), an
integrity refusal (class 23), 42501, or a program limit (class 54, e.g. the server's jsonb depth limit).
Anything else (XX000, 42883, 42804, P0001 without a code, a cancelled statement) is a finding. A call that
fails must change nothing: its transaction is rolled back, the session's role, claims, statement_timeout
and search_path are back, it holds no session advisory lock, and at the end a fingerprint of every table
equals the one taken before the first call (nothing escaped a rollback).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import asyncpg
import pytest

from tests.helpers import award, new_profile
from xpbase.db import Database, member_claims, switch_role

TEN_MB = 10 * 1024 * 1024
DEEP = 100_000
MANY = 100_000

TIME_EXTREMES = ("infinity", "-infinity", "0001-01-01 00:00:00+00", "294276-12-31 23:59:59+00")
DATE_EXTREMES = ("infinity", "-infinity", "0001-01-01", "5874897-12-31")
EXTREMES: dict[str, tuple[str, ...]] = {
    "text": ("", "x" * TEN_MB, "a\x00b", " ", "\u202e\u200b"),
    "character varying": ("", "x" * TEN_MB, "a\x00b"),
    "uuid": ("00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff"),
    "integer": ("-2147483648", "2147483647", "0", "-1"),
    "bigint": ("-9223372036854775808", "9223372036854775807", "0", "-1"),
    "smallint": ("-32768", "32767", "0"),
    "numeric": ("NaN", "Infinity", "-Infinity", "1e100", "-1e100"),
    "double precision": ("NaN", "Infinity", "-Infinity", "1e308"),
    "real": ("NaN", "Infinity", "-Infinity"),
    "timestamp with time zone": TIME_EXTREMES,
    "timestamp without time zone": ("infinity", "-infinity", "0001-01-01", "294276-12-31 23:59:59"),
    "date": DATE_EXTREMES,
    "interval": ("178000000 years", "-178000000 years"),
    "time without time zone": ("00:00", "24:00"),
    "boolean": ("true", "false"),
    "jsonb": (
        "{}",
        "[]",
        "null",
        '"' + "x" * TEN_MB + '"',
        "[" * DEEP + "]" * DEEP,
        "[" + ",".join(["0"] * MANY) + "]",
        '{"a": "\\u0000"}',
        "1e1000",
    ),
    "json": ("{}", "[" * DEEP + "]" * DEEP, "[" + ",".join(["0"] * MANY) + "]"),
    "text[]": ("{}", "{" + ",".join(["x"] * MANY) + "}", "{NULL}", '{""}'),
    "uuid[]": ("{}", "{" + ",".join(["00000000-0000-0000-0000-000000000000"] * MANY) + "}", "{NULL}"),
    "bigint[]": ("{}", "{" + ",".join(["1"] * MANY) + "}", "{NULL}"),
    "integer[]": ("{}", "{" + ",".join(["1"] * MANY) + "}", "{NULL}"),
}
"""Per type (format_type spelling): the extremes, as text cast to the type in SQL. Null is added for all."""

#: A plain value of each type for the parameters not under test that have no default.
PLAIN: dict[str, str] = {
    "text": "x",
    "character varying": "x",
    "integer": "1",
    "bigint": "1",
    "smallint": "1",
    "numeric": "1",
    "double precision": "1",
    "real": "1",
    "boolean": "false",
    "jsonb": "{}",
    "json": "{}",
    "interval": "1 hour",
    "time without time zone": "12:00",
    "text[]": "{}",
    "uuid[]": "{}",
    "bigint[]": "{}",
    "integer[]": "{}",
}

CLEAR_CLASSES = ("XP", "22", "23", "54")
"""SQLSTATE prefixes that are clear answers: engine refusals, data exceptions, integrity, program limits."""
CLEAR_STATES = frozenset({"42501"})

SESSION_STATE = (
    "select current_user::text, current_setting('request.jwt.claims', true),"
    " current_setting('statement_timeout'),"
    " current_setting('search_path'),"
    " (select count(*) from pg_catalog.pg_locks l where l.pid = pg_backend_pid() and l.locktype = 'advisory')"
)


@dataclass
class Function:
    """One public function: name, identity, parameters (name, type, has a default) and the role to call as."""

    name: str
    identity: str
    params: list[tuple[str, str, bool]]
    role: str
    claims: dict[str, str] = field(default_factory=dict)


async def catalogue(conn: asyncpg.Connection) -> list[Function]:
    """The public functions an API role may execute, with their input parameters, from pg_proc."""
    rows = await conn.fetch(
        """
        select p.oid, p.proname, pg_get_function_identity_arguments(p.oid) as identity, p.pronargs,
               p.pronargdefaults, p.proargnames, p.proargmodes,
               array(select format_type(t, null) from unnest(p.proargtypes::oid[]) t) as types,
               has_function_privilege('authenticated', p.oid, 'execute') as member,
               has_function_privilege('service_role', p.oid, 'execute') as service,
               has_function_privilege('anon', p.oid, 'execute') as anon
          from pg_proc p
         where p.pronamespace = 'public'::regnamespace and p.prokind = 'f'
           and p.prorettype <> 'trigger'::regtype
           and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')
         order by p.proname, p.oid
        """
    )
    functions = []
    for row in rows:
        if not (row["member"] or row["service"] or row["anon"]):
            continue
        names = list(row["proargnames"] or [])
        modes = list(row["proargmodes"] or [])
        input_names = [n for i, n in enumerate(names) if not modes or modes[i] in ("i", "b", "v")]
        if len(input_names) < row["pronargs"] or not all(input_names):
            input_names = [""] * row["pronargs"]  # unnamed: called positionally, every argument given
        first_default = row["pronargs"] - row["pronargdefaults"]
        params = [
            (input_names[i], row["types"][i], i >= first_default and bool(input_names[i]))
            for i in range(row["pronargs"])
        ]
        role = "authenticated" if row["member"] else "service_role" if row["service"] else "anon"
        functions.append(Function(row["proname"], row["identity"], params, role))
    return functions


def plain_value(type_name: str, member: str) -> str | None:
    """A plain text value of a type for a parameter not under test (None: SQL null)."""
    if type_name == "uuid":
        return member
    if type_name == "timestamp with time zone":
        return "now"
    if type_name == "date":
        return "today"
    return PLAIN.get(type_name)


def is_clear(sqlstate: str) -> bool:
    """Whether an error SQLSTATE is a clear answer (see CLEAR_CLASSES)."""
    return sqlstate.startswith(CLEAR_CLASSES) or sqlstate in CLEAR_STATES


async def fingerprint(conn: asyncpg.Connection) -> str:
    """An md5 over every row of every table in public and private (as the connection's superuser)."""
    tables = await conn.fetch(
        "select format('%I.%I', n.nspname, c.relname) as name from pg_class c join pg_namespace n"
        " on n.oid = c.relnamespace where c.relkind in ('r', 'p') and n.nspname in ('public', 'private')"
        " order by 1"
    )
    parts = [
        await conn.fetchval(
            f"select md5(coalesce(string_agg(t::text, '|' order by t::text), '')) from {t['name']} t"
        )
        for t in tables
    ]
    return "".join(parts)


SHARDS = 4
"""The catalogue is split into this many tests (every SHARDS-th function from an offset), so pytest-xdist
spreads the calls over its workers; together they cover every function."""


@pytest.mark.parametrize("shard", range(SHARDS))
async def test_every_public_function_answers_extremes_clearly(db: Database, shard: int) -> None:
    member = await new_profile(db, "Bounds")
    await db.rpc("service_role_grant_admin", profile_id=member)
    await award(db, member, "event_attendance", "bounds-1", amount=100)
    claims = {
        "authenticated": member_claims(member),
        "service_role": {"role": "service_role"},
        "anon": {"role": "anon"},
    }
    findings: list[str] = []
    calls = params_fed = extremes_fed = 0
    slowest = (0.0, "")
    async with db.pool.acquire() as conn:
        functions = (await catalogue(conn))[shard::SHARDS]
        before = await fingerprint(conn)
        for fn in functions:
            async with conn.transaction():
                await switch_role(conn, fn.role, claims[fn.role])
                state = await conn.fetchrow(SESSION_STATE)
            for index, (name, type_name, _) in enumerate(fn.params):
                values = (None, *EXTREMES.get(type_name, ()))
                params_fed += 1
                for value in values:
                    extremes_fed += 1
                    args: list[str | None] = []
                    named: list[str] = []
                    for i, (other, other_type, has_default) in enumerate(fn.params):
                        if i == index:
                            args.append(value)
                        elif has_default:
                            continue
                        else:
                            args.append(plain_value(other_type, str(member)))
                        cast = f"${len(args)}::text::{other_type}"
                        named.append(f"{other} => {cast}" if other else cast)
                    sql = f"select * from public.{fn.name}({', '.join(named)})"
                    label = f"{fn.name}({fn.identity}) {name}={shown(value)} as {fn.role}"
                    calls += 1
                    started = time.monotonic()
                    tx = conn.transaction()
                    await tx.start()
                    try:
                        await switch_role(conn, fn.role, claims[fn.role])
                        if fn.role == "service_role":  # no timeout of its own: a guard against a hang
                            await conn.execute("set local statement_timeout = '60s'")
                        await conn.fetch(sql, *args)
                    except asyncpg.PostgresError as exc:
                        if not is_clear(exc.sqlstate or ""):
                            findings.append(f"{label}: {exc.sqlstate} {str(exc)[:160]}")
                    finally:
                        await tx.rollback()
                    elapsed = time.monotonic() - started
                    slowest = max(slowest, (elapsed, label))
                    async with conn.transaction():
                        await switch_role(conn, fn.role, claims[fn.role])
                        after = await conn.fetchrow(SESSION_STATE)
                    if after[4] != 0 or tuple(after) != tuple(state):
                        findings.append(f"{label}: left session state {tuple(after)} (was {tuple(state)})")
        assert await fingerprint(conn) == before, "a call changed the database although it was rolled back"
    print(
        f"\ninput bounds, shard {shard + 1}/{SHARDS}: {len(functions)} functions, {params_fed} parameters, "
        f"{extremes_fed} values (extremes and null), {calls} calls; slowest {slowest[0]:.2f} s: {slowest[1]}"
    )
    assert not findings, f"{len(findings)} unclear answers:\n" + "\n".join(findings)


def shown(value: str | None) -> str:
    """A short form of a value for a finding."""
    if value is None:
        return "null"
    return json.dumps(value if len(value) <= 40 else f"{value[:20]}...({len(value)} chars)")


@pytest.mark.parametrize(
    ("sqlstate", "clear"),
    [("XPTIM", True), ("22P02", True), ("42501", True), ("XX000", False), ("42883", False)],
)
def test_clear_answers(sqlstate: str, clear: bool) -> None:
    assert is_clear(sqlstate) is clear
