"""Every status a route can answer is in the OpenAPI document (issue 18): a walk over the routes' code.

For each HTTP route the walk follows the handler, each decorator's wrapper and
every service function they call by name (transitively), and collects:
``APIError(<status>, ...)`` literals; 400 for a validated body or query
string; and the statuses of the SQLSTATEs named in the comment of every SQL
function called (``Errors: XPBAD, XPPRF``), through xpbase/errors.py. The
route's documented responses must include them all.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

from quart import Quart
from quart.typing import TestClientProtocol as Client
from quart_schema.validation import QUART_SCHEMA_QUERYSTRING_ATTRIBUTE, QUART_SCHEMA_REQUEST_ATTRIBUTE

from service.blueprints.payments import WEBHOOK_IGNORED
from xpbase.db import Database
from xpbase.errors import ENGINE_ERRORS

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
# SQLSTATEs a handler catches and answers itself (with a 2xx), per operation.
CAUGHT = {("POST", "/v1/payments/webhook"): WEBHOOK_IGNORED}

API_ERROR = re.compile(r"APIError\(\s*(\d{3})")
RPC_CALL = re.compile(r"""(?:\.call|\.call_json|\.rpc)\(\s*["']([a-z][a-z0-9_]*)["']""")
CALLED = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\(")
SQLSTATE = re.compile(r"\bXP[A-Z0-9]{3}\b")


def _walk(view: Callable[..., Any]) -> tuple[set[int], set[str], bool]:
    """APIError statuses, SQL function names reachable from a view (its wrappers and what they call), and
    whether it checks the Origin of cookie requests (403 ``untrusted_origin``, for unsafe methods only)."""
    checks_origin = False
    statuses: set[int] = set()
    functions: set[str] = set()
    todo: list[Any] = []
    layer: Any = view
    while layer is not None:  # every decorator's wrapper down to the handler itself
        todo.append(layer)
        if getattr(layer, QUART_SCHEMA_REQUEST_ATTRIBUTE, None) or getattr(
            layer, QUART_SCHEMA_QUERYSTRING_ATTRIBUTE, None
        ):
            statuses.add(400)
        layer = getattr(layer, "__wrapped__", None)
    seen: set[Any] = set()
    while todo:
        func = todo.pop()
        if func in seen or not inspect.isfunction(func):
            continue
        seen.add(func)
        if func.__name__ == "require_trusted_origin":
            checks_origin = True
            continue
        if not func.__module__.startswith("service."):
            continue
        source = inspect.getsource(func)
        statuses |= {int(s) for s in API_ERROR.findall(source)}
        functions |= set(RPC_CALL.findall(source))
        namespace = {**func.__globals__, **_closure(func)}
        todo.extend(namespace[name] for name in CALLED.findall(source) if name in namespace)
    return statuses, functions, checks_origin


def _closure(func: Any) -> dict[str, Any]:
    if not func.__closure__:
        return {}
    return {
        name: cell.cell_contents
        for name, cell in zip(func.__code__.co_freevars, func.__closure__, strict=True)
        if inspect.isfunction(cell.cell_contents)
    }


def _spec_path(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


async def _sql_codes(db: Database, functions: set[str]) -> dict[str, set[str]]:
    """Per SQL function name: the xpbase SQLSTATEs its comment names."""
    async with db.pool.acquire() as conn:
        rows = await conn.fetch(
            "select p.proname, coalesce(obj_description(p.oid, 'pg_proc'), '') as comment"
            " from pg_proc p where p.pronamespace = 'public'::regnamespace and p.proname = any($1::text[])",
            sorted(functions),
        )
    found: dict[str, set[str]] = {name: set() for name in functions}
    for row in rows:
        found[row["proname"]] |= {code for code in SQLSTATE.findall(row["comment"]) if code in ENGINE_ERRORS}
    return found


async def test_every_status_a_route_can_answer_is_documented(
    app: Quart, client: Client, db: Database
) -> None:
    """The walk's statuses are all in each operation's responses (and every route is in the document)."""
    spec = await (await client.get("/openapi.json")).get_json()
    routes: list[tuple[str, str, set[int], set[str]]] = []
    for rule in app.url_map.iter_rules():
        if rule.websocket or rule.endpoint == "static" or rule.endpoint.endswith(".static"):
            continue
        path = _spec_path(rule.rule)
        if path not in spec["paths"]:
            continue  # hidden routes (the web pages, the docs) are not API operations
        statuses, functions, checks_origin = _walk(app.view_functions[rule.endpoint])
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            origin = {403} if checks_origin and method in UNSAFE else set()
            routes.append((method, path, statuses | origin, functions))
    sql = await _sql_codes(db, {f for *_, functions in routes for f in functions})
    missing: list[str] = []
    for method, path, statuses, functions in routes:
        documented = {int(code) for code in spec["paths"][path][method.lower()]["responses"]}
        codes = {code for f in functions for code in sql[f]} - CAUGHT.get((method, path), set())
        expected = statuses | {ENGINE_ERRORS[c].status for c in codes if ENGINE_ERRORS[c].status >= 400}
        if gaps := sorted(expected - documented):
            missing.append(f"{method} {path}: {gaps}")
    assert len(routes) > 40
    assert missing == [], "\n".join(missing)
