"""A stand-in for PostgREST's RPC endpoint (as Supabase serves it) on loopback, backed by the real database.

``POST /rest/v1/rpc/<function>`` checks what Supabase's gateway and PostgREST
check (the ``apikey`` header, ``Authorization: Bearer <jwt>`` signed with the
project's JWT secret, a JSON object body, ``Content-Profile: public``), then
does what PostgREST does: in one transaction, ``set local role`` to the JWT's
role with ``request.jwt.claims``, call ``public.<function>`` with named
arguments read from the body through ``json_to_record`` (types from the
catalog), and answer with the result as JSON (a set-returning function gives
an array of rows). Database errors become PostgREST's error body
``{code, message, details, hint}`` with the SQLSTATE in ``code`` and
PostgREST's HTTP status for it; an unknown function is ``404 PGRST202``.
Every request is recorded for the tests to inspect.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import asyncpg
import jwt
from aiohttp import web
from multidict import CIMultiDict

from xpbase.db import switch_role

JWT_SECRET = "postgrest-stand-in-jwt-secret-0123456789abcdef"


def service_role_key(secret: str = JWT_SECRET) -> str:
    """A service_role key as Supabase issues them: an HS256 JWT with role service_role."""
    return jwt.encode(
        {"iss": "supabase", "ref": "standin", "role": "service_role", "iat": 1700000000, "exp": 4102444800},
        secret,
        algorithm="HS256",
    )


@dataclass
class RPCRequest:
    method: str
    path: str
    headers: CIMultiDict[str]
    body: Any


def _status(sqlstate: str, role: str) -> int:
    """PostgREST's HTTP status for a SQLSTATE (its error docs' table)."""
    if sqlstate == "42501":
        return 401 if role == "anon" else 403
    if sqlstate in ("23503", "23505"):
        return 409
    if sqlstate == "42883":
        return 404
    if sqlstate[:2] in ("08", "53", "57"):
        return 503
    if sqlstate[:2] == "XX":
        return 500
    return 400


def _error(
    status: int, code: str, message: str, details: str | None = None, hint: str | None = None
) -> web.Response:
    body = {"code": code, "message": message, "details": details, "hint": hint}
    return web.Response(status=status, body=json.dumps(body).encode(), content_type="application/json")


class PostgrestStandIn:
    """The stand-in server; ``url`` is what SUPABASE_URL would be."""

    def __init__(self, database_url: str, *, apikey: str, jwt_secret: str = JWT_SECRET) -> None:
        self.database_url = database_url
        self.apikey = apikey
        self.jwt_secret = jwt_secret
        self.requests: list[RPCRequest] = []
        self.url = ""
        self._pool: asyncpg.Pool | None = None
        self._runner: web.AppRunner | None = None
        app = web.Application()
        app.router.add_route("*", "/rest/v1/rpc/{function}", self._rpc)
        self.app = app

    async def start(self) -> str:
        self._pool = await asyncpg.create_pool(self.database_url, min_size=1, max_size=4)
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._pool is not None:
            await self._pool.close()

    async def _rpc(self, request: web.Request) -> web.Response:
        function = request.match_info["function"]
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = raw.decode(errors="replace")
        self.requests.append(RPCRequest(request.method, request.path, CIMultiDict(request.headers), body))

        if request.headers.get("apikey") != self.apikey:
            return web.Response(
                status=401, body=b'{"message":"Invalid API key"}', content_type="application/json"
            )
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return _error(401, "PGRST302", "Anonymous access is disabled")
        try:
            claims = jwt.decode(
                auth.removeprefix("Bearer "),
                self.jwt_secret,
                algorithms=["HS256"],
                options={"verify_aud": False},
            )
        except jwt.PyJWTError as exc:
            return _error(401, "PGRST301", f"JWSError {exc}")
        if request.method != "POST":
            return _error(405, "PGRST101", "Only POST is implemented by the stand-in")
        if request.content_type != "application/json":
            return _error(415, "PGRST102", "Content-Type must be application/json")
        if request.headers.get("Content-Profile", "public") != "public":
            return _error(406, "PGRST106", "The schema must be one of the following: public")
        if not isinstance(body, dict):
            return _error(400, "PGRST102", "Empty or invalid json")

        role = str(claims.get("role", "anon"))
        assert self._pool is not None
        async with self._pool.acquire() as conn:
            try:
                async with conn.transaction():
                    await switch_role(conn, role, claims)
                    candidates = await conn.fetch(
                        """
                        select p.proretset, p.pronargdefaults, p.proargnames, p.proargmodes::text[] as modes,
                               array(select format_type(t, null)
                                       from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]))
                                            with ordinality x(t, n)
                                      order by n) as types
                          from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                         where n.nspname = 'public' and p.proname = $1
                        """,
                        function,
                    )
                    chosen = None
                    for c in candidates:
                        modes = c["modes"] or ["i"] * len(c["types"])
                        names = c["proargnames"] or [""] * len(modes)
                        inputs = [
                            (nm, ty)
                            for nm, ty, md in zip(names, c["types"], modes, strict=False)
                            if md in ("i", "b", "v")
                        ]
                        required = {nm for nm, _ in inputs[: len(inputs) - c["pronargdefaults"]]}
                        if set(body) <= {nm for nm, _ in inputs} and required <= set(body):
                            chosen = (c["proretset"], [(nm, ty) for nm, ty in inputs if nm in body])
                    if chosen is None:
                        return _error(
                            404,
                            "PGRST202",
                            f"Could not find the function public.{function}({', '.join(sorted(body))}) "
                            "in the schema cache",
                            f"Searched for the function public.{function} with parameters "
                            f"{', '.join(sorted(body))} or with a single unnamed json/jsonb parameter, "
                            "but no matches were found in the schema cache.",
                        )
                    returns_set, args = chosen
                    call = (
                        f'public."{function}"(' + ", ".join(f'"{nm}" := _args."{nm}"' for nm, _ in args) + ")"
                    )
                    columns = ", ".join(f'"{nm}" {ty}' for nm, ty in args)
                    source = (
                        f"json_to_record($1::json) as _args({columns})"
                        if args
                        else "(select $1::json) as _args"
                    )
                    if returns_set:
                        sql = f"select coalesce(json_agg(_r), '[]')::text from {source}, lateral {call} as _r"
                    else:
                        sql = f"select to_json({call})::text from {source}"
                    result = await conn.fetchval(sql, json.dumps(body))
            except asyncpg.PostgresError as exc:
                return _error(
                    _status(exc.sqlstate, role),
                    exc.sqlstate,
                    str(exc),
                    getattr(exc, "detail", None),
                    getattr(exc, "hint", None),
                )
        return web.Response(body=(result or "null").encode(), content_type="application/json")


async def started(database_url: str) -> tuple[PostgrestStandIn, str]:
    """A running stand-in on ``database_url`` and the service_role key it accepts."""
    key = service_role_key()
    standin = PostgrestStandIn(database_url, apikey=key)
    await standin.start()
    return standin, key
