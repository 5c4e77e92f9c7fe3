"""Database access the way PostgREST does it.

Python code never runs a request as the connection's own (superuser) role.
Every unit of work is a transaction that first does what PostgREST does::

    select set_config('role', <role>, true), set_config('request.jwt.claims', <claims json>, true)

so the database applies the same grants and row-level security to the bot,
the service and a frontend on Supabase. ``switch_role`` is that statement.

Which path for what:

- ``Database.rpc`` / ``rpc_rows``: the service's calls, as any role (a member
  with their verified claims, anon, service_role); asyncpg values back.
- ``Database.transaction`` / ``as_service`` / ``as_member`` / ``as_anon``:
  several statements in one transaction under one role.
- ``xpbase.rpc.RPC``: service_role calls that must also work against a hosted
  Supabase project over PostgREST (the Discord bot); JSON values back.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Literal, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit
from uuid import UUID

import asyncpg

from xpbase import embedded
from xpbase.errors import translate
from xpbase.settings import Settings

Role = Literal["anon", "authenticated", "service_role"]
SERVICE_CLAIMS: dict[str, Any] = {"role": "service_role"}
SET_ROLE = (
    "select set_config('role', $1::text, true), set_config('request.jwt.claims', $2::text, true),"
    " set_config('statement_timeout', coalesce((select o.option_value from pg_catalog.pg_roles r,"
    " pg_catalog.pg_options_to_table(r.rolconfig) o"
    " where r.rolname::text = $1::text and o.option_name = 'statement_timeout'),"
    " current_setting('statement_timeout')), true)"
)
"""PostgREST's role switch for the current transaction: ``$1`` the role, ``$2`` the claims as JSON text.

Like PostgREST, it also applies the role's own ``statement_timeout`` (``alter role ... set``; anon 3 s and
authenticated 8 s, migration 20261201100000) for the rest of the transaction."""


def resolve_url(settings: Settings, *, start_embedded: bool = True) -> tuple[str, bool]:
    """The database URL to use and whether this call started the embedded server.

    ``DATABASE_URL`` when set; otherwise the embedded server in
    ``settings.data_dir``, started when ``start_embedded`` (else
    RuntimeError if it is not running).
    """
    if settings.database_url:
        return settings.database_url, False
    if start_embedded:
        return embedded.start(settings.data_dir, tcp=settings.embedded_tcp)
    current = embedded.status(settings.data_dir, tcp=settings.embedded_tcp)
    if not current.running or current.url is None:
        raise RuntimeError(f"the embedded Postgres in {current.pgdata} is not running: run `xpbase db start`")
    return current.url, False


T = TypeVar("T")

TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})
"""serialization_failure and deadlock_detected: the transaction was rolled back and may simply run again."""
RETRY_ATTEMPTS = 4
"""Tries in all for one RPC whose transaction hit a transient SQLSTATE (the first call and three retries)."""
RETRY_BASE_DELAY = 0.02
"""Seconds: before retry n (1, 2, 3) a call sleeps a random time in [0, RETRY_BASE_DELAY * 2**n] (jitter)."""


async def retry_transient(call: Callable[[], Awaitable[T]], *, attempts: int = RETRY_ATTEMPTS) -> T:
    """``await call()``, again when its transaction failed with 40001 or 40P01, at most ``attempts`` times.

    Safe for the engine's RPCs: a failed transaction changed nothing, and writes carry idempotency keys.
    Between tries it sleeps with full jitter (see RETRY_BASE_DELAY), so two callers that deadlocked do not
    collide again in step. The last failure is re-raised as it came; every other error at once.
    """
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except asyncpg.PostgresError as exc:
            if getattr(exc, "sqlstate", None) not in TRANSIENT_SQLSTATES or attempt == attempts:
                raise
        await asyncio.sleep(random.uniform(0, RETRY_BASE_DELAY * 2**attempt))
    raise AssertionError("unreachable")


DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def url_with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` on the same server (same user, host, options).

    Raises ValueError unless ``name`` is a plain lowercase identifier.
    """
    if not DATABASE_NAME.match(name):
        raise ValueError(f"not a database name: {name!r} (lowercase letters, digits and _)")
    return urlunsplit(urlsplit(url)._replace(path="/" + quote(name)))


async def recreate_database(url: str, name: str, *, drop: bool) -> bool:
    """Create database ``name`` on the server of ``url`` (dropping it first when ``drop``).

    Returns True when this call created it (False: it existed and was kept).
    Connects to ``url``'s own database to do it; needs the CREATEDB privilege.
    """
    url_with_database(url, name)  # validates the name
    conn = await asyncpg.connect(url)
    try:
        if drop:
            await conn.execute(f'drop database if exists "{name}" with (force)')
        if await conn.fetchval("select exists (select 1 from pg_database where datname = $1)", name):
            return False
        await conn.execute(f'create database "{name}"')
        return True
    finally:
        await conn.close()


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(typename, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(url: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """An asyncpg pool whose connections decode json/jsonb to Python objects."""
    pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size, init=_init_connection)
    assert pool is not None
    return pool


def member_claims(profile_id: UUID | str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The claims PostgREST would see for a signed-in member (role authenticated, sub = profile id)."""
    claims: dict[str, Any] = {"role": "authenticated", "aud": "authenticated", "sub": str(profile_id)}
    if extra:
        claims.update(extra)
    return claims


async def switch_role(conn: asyncpg.Connection, role: str, claims: Mapping[str, Any] | None = None) -> None:
    """Run the rest of the current transaction on ``conn`` as ``role`` with ``claims`` (PostgREST's switch).

    ``claims`` defaults to ``{"role": role}``. The settings are transaction-local
    (``set_config(..., true)``): call it inside a transaction; they end with it.
    This is the one place the switch is written (transaction_as, tests/helpers.py
    and the PostgREST stand-in use it).
    """
    await conn.execute(SET_ROLE, role, json.dumps(dict(claims or {"role": role})))


@asynccontextmanager
async def transaction_as(
    conn: asyncpg.Connection, role: Role, claims: Mapping[str, Any] | None = None
) -> AsyncIterator[asyncpg.Connection]:
    """A transaction on ``conn`` running as ``role`` with ``claims`` (PostgREST's switch).

    For work that must stay on one connection (temporary tables, one session).
    Commits when the block ends, rolls back on an exception; engine SQLSTATEs
    are re-raised as xpbase.errors.DomainError.
    """
    async with conn.transaction():
        await switch_role(conn, role, claims)
        try:
            yield conn
        except asyncpg.PostgresError as exc:
            domain = translate(exc)
            if domain is not None:
                raise domain from exc
            raise


async def connect(url: str) -> asyncpg.Connection:
    """One asyncpg connection that decodes json/jsonb to Python objects (like the pool's)."""
    conn = await asyncpg.connect(url)
    await _init_connection(conn)
    return conn


class Database:
    """A pool plus the PostgREST-style role switch. One per process."""

    def __init__(self, pool: asyncpg.Pool, url: str | None = None) -> None:
        self.pool = pool
        self.url = url  # for connections outside the pool (a LISTEN: the bot's rewards and deliveries)

    @classmethod
    async def connect(cls, url: str, *, min_size: int = 1, max_size: int = 10) -> Database:
        """A Database with its own pool of ``min_size`` to ``max_size`` connections on ``url``.

        Raises asyncpg/OSError errors when the server cannot be reached.
        """
        return cls(await create_pool(url, min_size=min_size, max_size=max_size), url)

    async def close(self) -> None:
        """Close the pool (waits for connections in use to be released)."""
        await self.pool.close()

    @asynccontextmanager
    async def transaction(
        self, role: Role, claims: Mapping[str, Any] | None = None
    ) -> AsyncIterator[asyncpg.Connection]:
        """A connection inside a transaction running as ``role`` with ``claims``.

        Commits when the block ends, rolls back on an exception. Postgres
        errors with an engine SQLSTATE are re-raised as xpbase.errors.DomainError.
        """
        async with self.pool.acquire() as conn, transaction_as(conn, role, claims) as tx:
            yield tx

    def as_service(self) -> Any:
        """``transaction('service_role')``: the bot and trusted service work."""
        return self.transaction("service_role", SERVICE_CLAIMS)

    def as_member(self, profile_id: UUID | str, claims: Mapping[str, Any] | None = None) -> Any:
        """``transaction('authenticated')`` with the member's claims (verified JWT claims when given)."""
        return self.transaction("authenticated", dict(claims) if claims else member_claims(profile_id))

    def as_anon(self) -> Any:
        """``transaction('anon')``: what a visitor without a token may see."""
        return self.transaction("anon", {"role": "anon"})

    async def rpc(
        self,
        function: str,
        /,
        *,
        role: Role = "service_role",
        claims: Mapping[str, Any] | None = None,
        on_notice: Callable[[asyncpg.PostgresLogMessage], None] | None = None,
        **params: Any,
    ) -> Any:
        """Call ``public.<function>`` with named parameters, as PostgREST's ``/rpc/<function>`` would.

        Runs as ``role`` with ``claims`` (default: ``{"role": role}``); ``on_notice`` gets each NOTICE the
        call raises while it runs (the progress of long work, e.g. a rule change). Returns the
        function's single value as asyncpg decodes it (jsonb as dicts and lists,
        uuid as UUID, timestamptz as an aware datetime in UTC). Raises ValueError
        for a function or parameter name that is not an identifier, DomainError
        for engine refusals, asyncpg errors otherwise. A serialization failure
        or deadlock (40001, 40P01) is retried (``retry_transient``: 4 tries in all, jittered).

        For the service's own calls, which may run as a member. Code that only
        calls as service_role and may run against a hosted Supabase project (the
        bot) uses xpbase.rpc.RPC instead: JSON values, asyncpg or PostgREST.
        """
        sql = self._function_sql("select public.{call}", function, params)

        def listener(_conn: Any, message: asyncpg.PostgresLogMessage) -> None:
            assert on_notice is not None
            on_notice(message)

        async def call() -> Any:
            async with self.transaction(role, claims or {"role": role}) as conn:
                if on_notice is not None:
                    conn.add_log_listener(listener)
                try:
                    return await conn.fetchval(sql, *params.values())
                finally:
                    if on_notice is not None:
                        conn.remove_log_listener(listener)

        return await retry_transient(call)

    async def rpc_rows(
        self,
        function: str,
        /,
        *,
        role: Role = "service_role",
        claims: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> list[asyncpg.Record]:
        """Call a set-returning ``public.<function>`` with named parameters; returns its rows.

        Same role switch and errors as ``rpc`` (PostgREST's ``/rpc/<function>`` for a set-returning one).
        """
        sql = self._function_sql("select * from public.{call}", function, params)

        async def call() -> list[asyncpg.Record]:
            async with self.transaction(role, claims or {"role": role}) as conn:
                return list(await conn.fetch(sql, *params.values()))

        return await retry_transient(call)

    @staticmethod
    def _function_sql(template: str, function: str, params: Mapping[str, Any]) -> str:
        """``template`` with ``{call}`` as ``function(name => $1, ...)``; ValueError for a bad name."""
        if not function.isidentifier() or not all(name.isidentifier() for name in params):
            raise ValueError(f"not a function or parameter name: {function!r}, {list(params)!r}")
        args = ", ".join(f"{name} => ${i}" for i, name in enumerate(params, start=1))
        return template.format(call=f"{function}({args})")
