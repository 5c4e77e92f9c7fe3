"""Websockets: /v1/events (own notifications, relay reconnect) and /v1/chat (history, live, two processes)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from quart import Quart
from quart.testing.connections import WebsocketResponseError

from service.app import create_app
from tests.helpers import award, new_profile
from tests.service.conftest import JWT_SECRET, make_token
from xpbase.db import Database
from xpbase.settings import Settings


def auth(pid: UUID) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(sub=str(pid))}"}


async def receive(ws: Any) -> dict[str, Any]:
    """The next JSON message (a hang guard of 20 s so a broken relay fails instead of blocking the suite)."""
    return json.loads(await asyncio.wait_for(ws.receive(), 20))


async def next_level_up(ws: Any) -> dict[str, Any]:
    """The next level_up notification on an events socket (other kinds, e.g. layer status, are skipped)."""
    while True:
        event = await receive(ws)
        if event["type"] == "notification" and event["notification"]["kind"] == "level_up":
            return event["notification"]


async def eventually(predicate: Any) -> None:
    for _ in range(400):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition never became true")


@pytest.fixture
async def second_app(database_url: str, tmp_path: Any) -> AsyncIterator[Quart]:
    """Another service process on the same database: its own pool and its own LISTEN connection."""
    database = await Database.connect(database_url, min_size=1, max_size=5)
    application = create_app(Settings(jwt_secret=JWT_SECRET, data_dir=tmp_path), database=database)
    try:
        async with application.test_app():
            yield application
    finally:
        await database.close()


async def test_events_stream_the_members_own_notifications(app: Quart, db: Database) -> None:
    """A level-up of the member arrives on their socket; another member's does not."""
    ada, bob = await new_profile(db, "Ada"), await new_profile(db, "Bob")
    async with app.test_client().websocket("/v1/events", headers=auth(ada)) as ws:
        assert (await receive(ws))["type"] == "ready"
        await award(db, bob, "challenge_completed", "b", amount=200)
        await award(db, ada, "challenge_completed", "a", amount=500)
        # Bob reached level 2 first; Ada's level 3 is the first level-up her socket hears
        assert (await next_level_up(ws))["data"]["level"] == 3


async def test_events_accept_the_token_as_a_query_parameter(app: Quart, db: Database) -> None:
    """Browsers cannot set websocket headers: ?token= works too, and ?since= replays what was missed."""
    ada = await new_profile(db, "Ada")
    await db.rpc("service_role_check_in", profile_id=ada, at=datetime(2026, 3, 1, tzinfo=UTC))
    await award(db, ada, "challenge_completed", "a", amount=200)
    token = make_token(sub=str(ada))
    async with app.test_client().websocket("/v1/events", query_string={"token": token, "since": 0}) as ws:
        assert (await receive(ws))["type"] == "ready"
        assert (await next_level_up(ws))["data"]["level"] == 2


@pytest.mark.parametrize("path", ["/v1/events", "/v1/chat"])
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-jwt"}])
async def test_websockets_refuse_missing_or_bad_tokens(
    app: Quart, path: str, headers: dict[str, str]
) -> None:
    """Without a valid token the handshake is answered 401 with the usual error body."""
    with pytest.raises(WebsocketResponseError) as info:
        async with app.test_client().websocket(path, headers=headers) as ws:
            await ws.receive()
    assert info.value.response.status_code == 401
    assert (await info.value.response.get_json())["error"]["code"] == "invalid_token"


async def test_relay_reconnects_after_its_backend_is_terminated(
    app: Quart, db: Database, database_url: str
) -> None:
    """pg_terminate_backend on the listener: the relay reconnects and no notification is lost."""
    ada = await new_profile(db, "Ada")
    relay = app.config["XPBASE_RELAY"]
    async with app.test_client().websocket("/v1/events", headers=auth(ada)) as ws:
        assert (await receive(ws))["type"] == "ready"
        admin = await asyncpg.connect(database_url)
        try:
            assert await admin.fetchval("select pg_terminate_backend($1)", relay.backend_pid)
        finally:
            await admin.close()
        await award(db, ada, "challenge_completed", "during", amount=200)  # while nobody listens
        assert (await next_level_up(ws))["data"]["level"] == 2
        await eventually(lambda: relay.reconnects == 1 and relay.backend_pid is not None)
        await award(db, ada, "challenge_completed", "after", amount=300)
        assert (await next_level_up(ws))["data"]["level"] == 3


async def test_chat_sends_history_then_live_messages(app: Quart, db: Database) -> None:
    """On connect: the last 50 messages; then what anyone posts, including over the socket itself."""
    ada, bob = await new_profile(db, "Ada"), await new_profile(db, "Bob")
    async with db.as_service() as conn:
        await conn.execute("update public.chat_settings set rate_limit_count = 100")
    for i in range(55):
        await db.rpc(
            "post_chat_message",
            role="authenticated",
            claims={"role": "authenticated", "sub": str(bob)},
            body=f"m{i}",
        )
    client = app.test_client()
    async with client.websocket("/v1/chat", headers=auth(ada)) as ws:
        history = await receive(ws)
        assert history["type"] == "history"
        assert [m["body"] for m in history["messages"]] == [f"m{i}" for i in range(5, 55)]
        await ws.send(json.dumps({"body": "hello from Ada"}))
        events = [await receive(ws), await receive(ws)]
        by_type = {e["type"]: e for e in events}
        assert by_type["message"]["message"]["body"] == "hello from Ada"
        assert by_type["message"]["message"]["author_name"] == "Ada"
        assert by_type["sent"]["id"] == by_type["message"]["message"]["id"]


async def test_chat_errors_come_back_on_the_socket(app: Quart, db: Database) -> None:
    """A too-long message is answered with an error frame; the socket stays open."""
    ada = await new_profile(db, "Ada")
    async with app.test_client().websocket("/v1/chat", headers=auth(ada)) as ws:
        assert (await receive(ws))["type"] == "history"
        await ws.send("x" * 501)
        assert (await receive(ws))["error"]["code"] == "invalid_argument"
        await ws.send("fine")
        assert {(await receive(ws))["type"], (await receive(ws))["type"]} == {"sent", "message"}


async def test_chat_works_across_two_service_processes(app: Quart, second_app: Quart, db: Database) -> None:
    """A message posted through one service reaches a client of the other (both relay pg_notify)."""
    ada, bob = await new_profile(db, "Ada"), await new_profile(db, "Bob")
    async with (
        app.test_client().websocket("/v1/chat", headers=auth(ada)) as ada_ws,
        second_app.test_client().websocket("/v1/chat", headers=auth(bob)) as bob_ws,
    ):
        assert (await receive(ada_ws))["type"] == "history"
        assert (await receive(bob_ws))["type"] == "history"
        await bob_ws.send("hi Ada, from the other process")
        got = await receive(ada_ws)
        assert (got["type"], got["message"]["author_name"]) == ("message", "Bob")
