"""Calling the database's functions by name, over asyncpg or over PostgREST: the one client.

``rpc.call(function, role=..., claims=..., **params)`` is how Python calls a
``public`` function, whoever it runs as: the bot as ``service_role``, the
service as ``anon`` or as the member whose verified token it holds. The
answer is what PostgREST's ``POST /rest/v1/rpc/<name>`` returns, read through
the typed contract: when ``xpbase.models`` has a model for the function the
answer comes back as that model (a list of models for a set-returning
function), validated, so a key renamed in SQL fails loudly instead of reading
as a default; otherwise as JSON values (dicts, lists, str, int, float, bool,
None; uuids and timestamps as strings). Two transports give the same answers
for the same calls:

- :class:`PostgresRPC` (the default): asyncpg straight to Postgres, each call
  one transaction that switches to ``service_role`` as PostgREST does
  (``xpbase.db``). Arguments travel as one JSON object turned into a typed
  record with ``jsonb_to_record`` (PostgREST's own technique), so named
  arguments, defaults and types behave as over HTTP. It can also ``LISTEN``.
- :class:`PostgrestRPC`: supabase-py's PostgREST client, when
  ``SUPABASE_URL`` and ``SUPABASE_SERVICE_ROLE_KEY`` are set (a hosted
  Supabase project whose database the bot cannot reach directly). It holds
  the service-role key, so it calls as ``service_role`` only.

``xpbase.db.Database.rpc`` stays as the raw primitive (asyncpg values, no
model) for tests and for functions whose answer is a scalar.

Errors are the same on both: :class:`xpbase.errors.DomainError` for the
engine's SQLSTATEs, :class:`RPCError` for any other database or PostgREST
error (``code`` is the SQLSTATE, or PostgREST's ``PGRST...`` code), and
:class:`RPCUnavailable` when the database or PostgREST cannot be reached.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import json
import logging
import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar

import asyncpg
from pydantic import RootModel, TypeAdapter

from xpbase.db import Database, Role, retry_transient
from xpbase.errors import DomainError, from_sqlstate
from xpbase.models import results
from xpbase.settings import Settings

log = logging.getLogger(__name__)


class RPCError(Exception):
    """A database or PostgREST error without an engine SQLSTATE.

    ``code`` is the SQLSTATE (``42883``...) or PostgREST's code (``PGRST202``
    for an unknown function); ``details`` and ``hint`` as PostgREST reports them.
    """

    def __init__(
        self, code: str | None, message: str, details: str | None = None, hint: str | None = None
    ) -> None:
        super().__init__(f"{code}: {message}" if code else message)
        self.code = code
        self.message = message
        self.details = details
        self.hint = hint


class RPCUnavailable(RPCError):
    """The database (or PostgREST) could not be reached or dropped the connection."""


def jsonable(value: Any) -> Any:
    """``value`` with uuids, datetimes and decimals turned into JSON values, as PostgREST expects them."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()  # bytea's hex input form, as PostgREST takes it
    return value


@cache
def _adapters() -> dict[str, tuple[TypeAdapter[Any], bool]]:
    """``{function: (adapter, whole)}``; ``whole``: the model is a RootModel that takes the entire list."""
    return {
        function: (TypeAdapter(model), isinstance(model, type) and issubclass(model, RootModel))
        for function, model in results().items()
    }


def typed(function: str, value: Any) -> Any:
    """``value`` (a function's JSON answer) as the function's result model, when it has one.

    A list (a set-returning function, or a jsonb array) becomes a list of
    models (a ``RootModel`` of a list takes the list whole); null stays None.
    A model may be a union of models (an answer with several shapes, e.g.
    ``service_role_take_oauth_state``). Raises pydantic.ValidationError when
    the answer does not match its model.
    """
    found = _adapters().get(function)
    if found is None or value is None:
        return value
    adapter, whole = found
    if isinstance(value, list) and not whole:
        return [adapter.validate_python(item) for item in value]
    return adapter.validate_python(value)


def _check_name(name: str, what: str = "function") -> None:
    if not name.isidentifier() or not name.isascii():
        raise ValueError(f"not a {what} name: {name!r}")


class Listener:
    """A LISTEN in progress: ``alive`` until its connection drops; ``close()`` stops it."""

    def __init__(self, conn: asyncpg.Connection, release: Callable[[], Awaitable[None]]) -> None:
        self._conn = conn
        self._release = release

    @property
    def alive(self) -> bool:
        """False once the LISTEN connection has closed (the caller should listen again or poll)."""
        return not self._conn.is_closed()

    async def close(self) -> None:
        """Stop listening and release the connection."""
        await self._release()


class RPC(ABC):
    """Calls ``public.<function>``; one per process, shared by everything in it."""

    transport: ClassVar[str]

    async def call(
        self,
        function: str,
        /,
        *,
        role: Role = "service_role",
        claims: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> Any:
        """The result of ``public.<function>(name => value, ...)`` run as ``role`` with ``claims``.

        ``claims`` default to ``{"role": role}``; a member's call passes their
        verified token's claims. The answer is the function's result model from
        ``xpbase.models`` when it has one (a list of models for rows), else JSON
        values. Raises DomainError, RPCError, RPCUnavailable, and
        pydantic.ValidationError when the answer breaks its model.
        """
        return typed(function, await self.call_json(function, role=role, claims=claims, **params))

    @abstractmethod
    async def call_json(
        self,
        function: str,
        /,
        *,
        role: Role = "service_role",
        claims: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> Any:
        """Like ``call`` but the answer as JSON values, without its model (for the contract test)."""

    async def listen(self, channel: str, callback: Callable[[str], None]) -> Listener | None:
        """Call ``callback(payload)`` for every ``pg_notify`` on ``channel``; returns the Listener, or None
        when the transport cannot listen (callers poll instead)."""
        return None

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""


@dataclass(frozen=True)
class _Signature:
    sql: str
    names: frozenset[str]


class PostgresRPC(RPC):
    """asyncpg to Postgres; each call is one ``service_role`` transaction (see ``xpbase.db``)."""

    transport = "postgres"

    def __init__(self, database: Database, *, url: str | None = None, owns_database: bool = False) -> None:
        self.database = database
        self.url = url
        self._owns_database = owns_database
        self._signatures: dict[tuple[str, frozenset[str]], _Signature] = {}
        self._listeners: list[tuple[asyncpg.Connection, str, Any]] = []

    @classmethod
    async def connect(cls, url: str, *, min_size: int = 1, max_size: int = 10) -> PostgresRPC:
        """A PostgresRPC with its own pool on ``url`` (closed by ``close``)."""
        database = await Database.connect(url, min_size=min_size, max_size=max_size)
        return cls(database, url=url, owns_database=True)

    async def _signature(self, conn: asyncpg.Connection, function: str, names: frozenset[str]) -> _Signature:
        key = (function, names)
        if key in self._signatures:
            return self._signatures[key]
        rows = await conn.fetch(
            """
            select p.proretset as returns_set, p.pronargdefaults as defaults,
                   coalesce(p.proargnames, '{}') as names,
                   coalesce(p.proargmodes::text[], '{}') as modes,
                   array(select format_type(t.oid, null)
                           from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]))
                                with ordinality as t(oid, n)
                          order by t.n) as types
              from pg_catalog.pg_proc p
             where p.pronamespace = 'public'::regnamespace and p.proname = $1
            """,
            function,
        )
        matches = []
        for row in rows:
            modes = list(row["modes"]) or ["i"] * len(row["types"])
            arg_names = row["names"] or [""] * len(modes)
            inputs = [(n, t) for n, t, m in zip(arg_names, row["types"], modes, strict=False) if m in "ibv"]
            input_names = [n for n, _ in inputs]
            required = set(input_names[: len(inputs) - row["defaults"]])
            if names <= set(input_names) and required <= names:
                matches.append((row["returns_set"], [(n, t) for n, t in inputs if n in names]))
        if not matches:
            raise RPCError(
                "PGRST202",
                f"Could not find the function public.{function}({', '.join(sorted(names))})"
                " in the schema cache",
            )
        if len(matches) > 1:
            raise RPCError(
                "PGRST203", f"Could not choose between the overloads of public.{function} for these arguments"
            )
        returns_set, args = matches[0]
        call = f'public."{function}"(' + ", ".join(f'"{n}" => _args."{n}"' for n, _ in args) + ")"
        source = (
            "from jsonb_to_record($1::text::jsonb) as _args(" + ", ".join(f'"{n}" {t}' for n, t in args) + ")"
            if args
            else "from (select $1::text) as _args"
        )
        if returns_set:
            rows_sql = "coalesce(jsonb_agg(to_jsonb(_r)), '[]'::jsonb)"
            sql = f"select {rows_sql} {source} cross join lateral {call} as _r"
        else:
            sql = f"select to_jsonb({call}) {source}"
        signature = _Signature(sql, names)
        self._signatures[key] = signature
        return signature

    async def call_json(
        self,
        function: str,
        /,
        *,
        role: Role = "service_role",
        claims: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> Any:
        _check_name(function)
        for name in params:
            _check_name(name, "parameter")
        body = json.dumps(jsonable(params))
        names = frozenset(params)
        for attempt in (1, 2):
            try:

                async def call() -> Any:
                    async with self.database.transaction(role, claims or {"role": role}) as conn:
                        signature = await self._signature(conn, function, names)
                        return await conn.fetchval(signature.sql, body)

                return await retry_transient(call)  # 40001 / 40P01: the transaction runs again
            except DomainError:
                raise
            except asyncpg.UndefinedFunctionError as exc:
                # a migration changed the function's signature: forget what we knew and look again.
                self._signatures.pop((function, names), None)
                if attempt == 2:
                    raise RPCError(exc.sqlstate, str(exc), exc.detail, exc.hint) from exc
            except asyncpg.PostgresError as exc:
                detail, hint = getattr(exc, "detail", None), getattr(exc, "hint", None)
                raise RPCError(exc.sqlstate, str(exc), detail, hint) from exc
            except (OSError, asyncpg.InterfaceError) as exc:
                raise RPCUnavailable(None, f"database unreachable: {exc}") from exc
        raise AssertionError("unreachable")

    async def listen(self, channel: str, callback: Callable[[str], None]) -> Listener | None:
        """LISTEN on a dedicated connection (``pg_notify`` payloads go to ``callback``)."""
        _check_name(channel, "channel")
        conn = await (asyncpg.connect(self.url) if self.url else self.database.pool.acquire())

        def on_notify(_conn: object, _pid: int, _channel: str, payload: str) -> None:
            callback(payload)

        await conn.add_listener(channel, on_notify)
        self._listeners.append((conn, channel, on_notify))

        async def release() -> None:
            entry = (conn, channel, on_notify)
            if entry in self._listeners:
                self._listeners.remove(entry)
                await self._release(*entry)

        return Listener(conn, release)

    async def _release(self, conn: asyncpg.Connection, channel: str, on_notify: Any) -> None:
        if not conn.is_closed():
            await conn.remove_listener(channel, on_notify)
        if self.url is None:
            await self.database.pool.release(conn)
        else:
            await conn.close()

    async def close(self) -> None:
        for entry in list(self._listeners):
            await self._release(*entry)
        self._listeners.clear()
        if self._owns_database:
            await self.database.close()


class PostgrestRPC(RPC):
    """PostgREST through supabase-py: ``POST {SUPABASE_URL}/rest/v1/rpc/<name>`` with the service-role key.

    The key goes in the ``apikey`` and ``Authorization: Bearer`` headers, so
    PostgREST runs the call as ``service_role``. POSTs are never retried
    (postgrest-py only retries GET and HEAD), so a call runs at most once.
    """

    transport = "postgrest"

    def __init__(self, client: Any) -> None:
        self.client = client

    @classmethod
    async def connect(cls, url: str, service_role_key: str, *, request_timeout: float = 10.0) -> PostgrestRPC:
        """A client for the project at ``url`` (``https://<ref>.supabase.co``); timeout in seconds."""
        import httpx

        from supabase import AsyncClientOptions, acreate_client

        options = AsyncClientOptions(
            httpx_client=httpx.AsyncClient(timeout=request_timeout),
            auto_refresh_token=False,
            persist_session=False,
        )
        return cls(await acreate_client(url, service_role_key, options=options))

    async def call_json(
        self,
        function: str,
        /,
        *,
        role: Role = "service_role",
        claims: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> Any:
        import httpx
        from postgrest.exceptions import APIError

        _check_name(function)
        if role != "service_role":
            raise ValueError(
                "the PostgREST transport holds the service-role key: it calls as service_role only"
            )
        try:
            response = await self.client.rpc(function, jsonable(params)).execute()
        except APIError as exc:
            message = exc.message or ""
            domain = from_sqlstate(exc.code, message)
            if domain is not None:
                raise domain from exc
            details = exc.details
            if details is not None and not isinstance(details, str):
                details = json.dumps(details)
            raise RPCError(exc.code, message, details, exc.hint) from exc
        except httpx.HTTPError as exc:
            raise RPCUnavailable(None, f"PostgREST unreachable: {exc}") from exc
        return response.data

    async def close(self) -> None:
        await self.client.postgrest.aclose()


async def connect_rpc(settings: Settings, *, start_embedded: bool = True) -> RPC:
    """The transport the settings ask for: PostgREST when ``SUPABASE_URL`` and
    ``SUPABASE_SERVICE_ROLE_KEY`` are both set, otherwise asyncpg on
    ``DATABASE_URL`` (or the embedded server, started when ``start_embedded``)."""
    if settings.supabase_url and settings.supabase_service_role_key:
        return await PostgrestRPC.connect(settings.supabase_url, settings.supabase_service_role_key)
    from xpbase.db import resolve_url

    url, _ = await asyncio.to_thread(resolve_url, settings, start_embedded=start_embedded)
    return await PostgresRPC.connect(url, min_size=settings.db_pool_min, max_size=settings.db_pool_max)
