"""xpbase.rpc: the same calls, results and errors over asyncpg and over PostgREST (supabase-py)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
from typing import Any

import pytest

from tests.helpers import acting_as, award, new_profile
from tests.postgrest_standin import PostgrestStandIn, service_role_key
from xpbase.db import Database
from xpbase.errors import DomainError
from xpbase.rpc import PostgresRPC, PostgrestRPC, RPCError, RPCUnavailable, jsonable

SQUARES = """
create function public.test_squares(n integer, start_at integer default 1)
returns table (i integer, square bigint, at timestamptz)
language sql stable as $$
  select g, g::bigint * g, timestamptz '2026-11-21 04:00:00+00' from generate_series(start_at, n) g
$$;
grant execute on function public.test_squares(integer, integer) to service_role;
"""


async def add_squares(db: Database) -> None:
    async with db.pool.acquire() as conn:
        await conn.execute(SQUARES)


async def test_postgrest_calls_have_the_shape_postgrest_expects(
    postgrest: PostgrestStandIn, postgrest_rpc: PostgrestRPC
) -> None:
    """POST /rest/v1/rpc/<name> with apikey and Bearer headers, a JSON object body, the public profile."""
    await postgrest_rpc.call("service_role_discord_guild", guild_id="123")
    [request] = postgrest.requests
    assert (request.method, request.path) == ("POST", "/rest/v1/rpc/service_role_discord_guild")
    assert request.headers["apikey"] == postgrest.apikey
    assert request.headers["Authorization"] == f"Bearer {postgrest.apikey}"
    assert request.headers["Content-Type"].startswith("application/json")
    assert request.headers.get("Content-Profile") == "public"
    assert request.body == {"guild_id": "123"}


async def test_both_transports_give_the_same_json(db: Database, postgrest_rpc: PostgrestRPC) -> None:
    """Objects, rows, uuids, timestamps, arrays and defaults come back identical over both transports."""
    await add_squares(db)
    direct = PostgresRPC(db)
    pid = await db.rpc("ensure_profile", provider="discord", subject="55", display_name="Ada")
    await award(db, pid, "challenge_completed", "c1", amount=300)
    calls: list[tuple[str, dict[str, Any]]] = [
        ("service_role_discord_member", {"user_id": "55", "recent": 3}),
        ("level_guide", {}),
        ("service_role_discord_role_plan", {"guild_id": "1", "user_ids": ["55", "56"]}),
        ("test_squares", {"n": 3}),
        ("test_squares", {"n": 4, "start_at": 3}),
        ("ensure_profile", {"provider": "discord", "subject": "55", "display_name": "Ada"}),
    ]
    for function, params in calls:
        assert await direct.call(function, **params) == await postgrest_rpc.call(function, **params), function
    rows = await direct.call("test_squares", n=2)
    assert rows == [
        {"i": 1, "square": 1, "at": "2026-11-21T04:00:00+00:00"},
        {"i": 2, "square": 4, "at": "2026-11-21T04:00:00+00:00"},
    ]


async def test_awards_over_postgrest_are_idempotent_like_over_asyncpg(
    db: Database, postgrest_rpc: PostgrestRPC
) -> None:
    """A passive award through PostgREST (datetime and text[] arguments) credits once; the replay says so."""
    params = {
        "guild_id": "1",
        "user_id": "77",
        "display_name": "Lin",
        "activity": "message",
        "idempotency_key": "discord:message:1",
        "occurred_at": dt.datetime(2026, 11, 21, 4, tzinfo=dt.UTC),
        "channel_id": "9",
        "role_ids": ["3", "4"],
    }
    first = await postgrest_rpc.call("service_role_discord_award", **params)
    replay = await PostgresRPC(db).call("service_role_discord_award", **params)
    assert (first.granted, first.replayed) == (15, False)
    assert (replay.granted, replay.replayed, replay.ledger_id) == (15, True, first.ledger_id)
    async with acting_as(db, "service_role") as conn:
        context = await conn.fetchval("select request -> 'context' from public.xp_ledger")
    assert context == {"guild_id": "1", "channel_id": "9", "role_ids": ["3", "4"]}


@pytest.mark.parametrize("transport", ["postgres", "postgrest"])
async def test_engine_errors_are_domain_errors_on_both_transports(
    db: Database, postgrest_rpc: PostgrestRPC, transport: str
) -> None:
    """XPBAD from the database arrives as DomainError with the database's message, whichever the transport."""
    rpc = PostgresRPC(db) if transport == "postgres" else postgrest_rpc
    with pytest.raises(DomainError) as refused:
        await rpc.call("service_role_discord_set_announcements", guild_id="1", mode="loud")
    assert refused.value.code == "invalid_argument"
    assert refused.value.message == "mode must be channel, current, dm or off, got loud"


@pytest.mark.parametrize("transport", ["postgres", "postgrest"])
async def test_unknown_functions_and_arguments_are_pgrst202(
    db: Database, postgrest_rpc: PostgrestRPC, transport: str
) -> None:
    """A function or argument name that does not exist is RPCError PGRST202 on both transports."""
    rpc = PostgresRPC(db) if transport == "postgres" else postgrest_rpc
    with pytest.raises(RPCError) as missing:
        await rpc.call("no_such_function", x=1)
    assert missing.value.code == "PGRST202"
    with pytest.raises(RPCError) as wrong_argument:
        await rpc.call("service_role_discord_guild", guild=1)
    assert wrong_argument.value.code == "PGRST202"


async def test_non_engine_database_errors_keep_their_sqlstate(
    db: Database, postgrest_rpc: PostgrestRPC
) -> None:
    """A database error without an engine code (bad uuid text) is RPCError with the SQLSTATE on both."""
    for rpc in (PostgresRPC(db), postgrest_rpc):
        with pytest.raises(RPCError) as failed:
            await rpc.call(
                "service_role_admin_reset_xp",
                actor_id="not-a-uuid",
                profile_id="x",
                reason="r",
                idempotency_key="k",
            )
        assert failed.value.code == "22P02"


async def test_a_key_signed_with_another_secret_is_refused(postgrest: PostgrestStandIn) -> None:
    """PostgREST refuses a JWT it cannot verify (401 PGRST301); the call fails with RPCError."""
    forged = service_role_key("another-secret-of-enough-length-0123456789")
    postgrest.apikey = forged  # the gateway lets it through; PostgREST's signature check does not
    rpc = await PostgrestRPC.connect(postgrest.url, forged)
    try:
        with pytest.raises(RPCError) as refused:
            await rpc.call("level_guide")
        assert refused.value.code == "PGRST301"
    finally:
        await rpc.close()


async def test_unreachable_postgrest_is_rpc_unavailable() -> None:
    """Nothing listening at SUPABASE_URL gives RPCUnavailable."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    rpc = await PostgrestRPC.connect(f"http://127.0.0.1:{port}", service_role_key())
    try:
        with pytest.raises(RPCUnavailable):
            await rpc.call("level_guide")
    finally:
        await rpc.close()


async def test_calls_run_as_service_role(db: Database, postgrest_rpc: PostgrestRPC) -> None:
    """Both transports run the function as service_role with its claims, never as the connection's owner."""
    async with db.pool.acquire() as conn:
        await conn.execute(
            "create function public.test_whoami() returns jsonb language sql stable as"
            " $$ select jsonb_build_object('role', current_user, 'claim', auth.role()) $$;"
            " grant execute on function public.test_whoami() to service_role;"
        )
    expected = {"role": "service_role", "claim": "service_role"}
    assert await PostgresRPC(db).call("test_whoami") == expected
    assert await postgrest_rpc.call("test_whoami") == expected


async def test_postgres_transport_listens_for_notifications(db: Database) -> None:
    """listen() delivers each pg_notify on the channel until the listener is closed."""
    rpc = PostgresRPC(db)
    payloads: list[str] = []
    received = asyncio.Event()

    def on_payload(payload: str) -> None:
        payloads.append(payload)
        received.set()

    listener = await rpc.listen("xpbase_notifications", on_payload)
    try:
        assert listener is not None and listener.alive
        pid = await new_profile(db)
        await award(db, pid, "challenge_completed", "level-up", amount=200)
        async with db.as_service() as conn:
            count = await conn.fetchval(
                "select count(*) from public.notifications where profile_id = $1", pid
            )
        # level 2, layer status and the default badge First steps: one payload each
        while len(payloads) < count:
            await asyncio.wait_for(received.wait(), timeout=10)
            received.clear()
        assert "level_up" in {json.loads(p)["kind"] for p in payloads}
    finally:
        if listener is not None:
            await listener.close()
        await rpc.close()


async def test_postgrest_transport_cannot_listen(postgrest_rpc: PostgrestRPC) -> None:
    """Over PostgREST there is no LISTEN: callers poll."""
    assert await postgrest_rpc.listen("xpbase_notifications", lambda _p: None) is None


def test_jsonable_turns_python_values_into_json_values() -> None:
    """uuids and datetimes become strings, decimals floats, tuples lists, nested."""
    import decimal
    import uuid

    value = {
        "id": uuid.UUID(int=1),
        "at": dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
        "f": decimal.Decimal("1.5"),
        "ids": ("1", "2"),
    }
    assert jsonable(value) == {
        "id": "00000000-0000-0000-0000-000000000001",
        "at": "2026-01-02T00:00:00+00:00",
        "f": 1.5,
        "ids": ["1", "2"],
    }
