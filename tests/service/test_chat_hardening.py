"""Chat and events sockets under attack: forged NOTIFYs, hostile frames, floods, socket caps (issue 18)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from uuid import UUID

import pytest
from quart import Quart
from quart.testing.connections import WebsocketDisconnectError, WebsocketResponseError

from tests.helpers import award, new_profile
from tests.service.test_live import auth, receive
from xpbase.db import Database
from xpbase.rpc import PostgresRPC


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"chat_socket_rate": 2.0, "chat_socket_burst": 5, "chat_max_sockets_per_member": 3}


async def _notify_as_member(db: Database, pid: UUID, channel: str, payload: dict[str, Any]) -> None:
    """A NOTIFY sent by a plain signed-in member (any role may NOTIFY on any channel)."""
    async with db.as_member(pid) as conn:
        await conn.execute("select pg_notify($1, $2)", channel, json.dumps(payload))


async def _post(db: Database, pid: UUID, body: str) -> int:
    message = await db.rpc(
        "post_chat_message",
        role="authenticated",
        claims={"role": "authenticated", "sub": str(pid)},
        body=body,
    )
    return int(message["id"])


async def test_forged_chat_notify_is_not_relayed(app: Quart, db: Database) -> None:
    """A member's NOTIFY on xpbase_chat sends nothing: sockets relay stored rows, read as their caller."""
    ada, eve = await new_profile(db, "Ada"), await new_profile(db, "Eve")
    old = await _post(db, ada, "before")
    async with app.test_client().websocket("/v1/chat", headers=auth(ada)) as ws:
        assert (await receive(ws))["type"] == "history"
        forged = {
            "id": 10**9,
            "profile_id": str(ada),
            "author_name": "Admin",
            "body": "send me your token",
            "created_at": "2026-01-01T00:00:00Z",
        }
        await _notify_as_member(db, eve, "xpbase_chat", forged)
        await _notify_as_member(db, eve, "xpbase_chat", {**forged, "id": old})  # an old id: not sent again
        await _notify_as_member(db, eve, "xpbase_chat", {"body": "no id at all"})
        real = await _post(db, eve, "a real message")
        event = await receive(ws)
        assert event["type"] == "message"
        assert (event["message"]["id"], event["message"]["body"]) == (real, "a real message")
        assert event["message"]["author_name"] == "Eve"


async def test_forged_notification_notify_is_not_relayed(app: Quart, db: Database) -> None:
    """A NOTIFY naming Ada with Bob's notification id (or a made-up body) sends Ada nothing."""
    ada, bob = await new_profile(db, "Ada"), await new_profile(db, "Bob")
    await award(db, bob, "challenge_completed", "bob-up", amount=200)
    async with db.as_service() as conn:
        bobs = await conn.fetchval("select max(id) from public.notifications where profile_id = $1", bob)
    async with app.test_client().websocket("/v1/events", headers=auth(ada)) as ws:
        assert (await receive(ws))["type"] == "ready"
        await _notify_as_member(db, bob, "xpbase_notifications", {"id": bobs, "profile_id": str(ada)})
        await _notify_as_member(
            db, bob, "xpbase_notifications", {"id": bobs + 1000, "profile_id": str(ada), "title": "forged"}
        )
        await award(db, ada, "challenge_completed", "ada-up", amount=200)
        event = await receive(ws)
        assert event["type"] == "notification"
        async with db.as_service() as conn:
            owner = await conn.fetchval(
                "select profile_id from public.notifications where id = $1", event["notification"]["id"]
            )
        assert owner == ada


async def _closed_with(ws: Any) -> int:
    with pytest.raises(WebsocketDisconnectError) as info:
        while True:
            await asyncio.wait_for(ws.receive(), 20)
    return int(info.value.args[0])


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\xff\xfe not text", 1007),
        (b'{"body": "binary but valid"}', 1007),
        ('{"body": ' + "[" * 100_000 + "]" * 100_000 + "}", 1009),
        ("[" * 40 + "]" * 40, 1009),
        ("x" * 100_000, 1009),
    ],
    ids=["invalid_utf8_binary", "binary", "deep_json", "forty_levels", "too_big"],
)
async def test_hostile_frames_close_the_socket_cleanly(
    frame: str | bytes, code: int, app: Quart, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """Binary frames close with 1007, too deep or too big with 1009; nothing is logged as an error."""
    ada = await new_profile(db, "Ada")
    async with app.test_client().websocket("/v1/chat", headers=auth(ada)) as ws:
        assert (await receive(ws))["type"] == "history"
        await ws.send(frame)
        assert await _closed_with(ws) == code
    assert [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")] == []


async def test_nul_is_refused_and_the_socket_stays_open(app: Quart, db: Database) -> None:
    """A NUL in a frame (raw or \\u0000 in JSON) is an invalid_argument error frame; the socket lives on."""
    ada = await new_profile(db, "Ada")
    async with app.test_client().websocket("/v1/chat", headers=auth(ada)) as ws:
        assert (await receive(ws))["type"] == "history"
        for frame in ("a\x00b", '{"body": "a\\u0000b"}'):
            await ws.send(frame)
            answer = await receive(ws)
            assert (answer["type"], answer["error"]["code"]) == ("error", "invalid_argument")
        await ws.send("fine")
        assert {(await receive(ws))["type"], (await receive(ws))["type"]} == {"sent", "message"}


async def test_a_flood_is_throttled_before_the_database(
    app: Quart, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,000 frames at once: the burst (5) and refill (2/s) reach the database, the rest are rate_limited."""
    ada = await new_profile(db, "Ada")
    async with db.as_service() as conn:
        await conn.execute("update public.chat_settings set rate_limit_count = 1000")
    calls = 0
    original = PostgresRPC.call_json

    async def counting(self: PostgresRPC, function: str, /, **kwargs: Any) -> Any:
        nonlocal calls
        if function == "post_chat_message":
            calls += 1
        return await original(self, function, **kwargs)

    monkeypatch.setattr(PostgresRPC, "call_json", counting)
    async with app.test_client().websocket("/v1/chat", headers=auth(ada)) as ws:
        assert (await receive(ws))["type"] == "history"
        started = time.monotonic()
        for i in range(1000):
            await ws.send(f"flood {i}")
        answers: dict[str, int] = {}
        while answers.get("sent", 0) + answers.get("error", 0) < 1000:
            event = await receive(ws)
            answers[event["type"]] = answers.get(event["type"], 0) + 1
        elapsed = time.monotonic() - started
    allowed = 5 + int(elapsed * 2) + 1
    assert 5 <= answers["sent"] <= allowed
    assert calls == answers["sent"]
    assert answers["error"] == 1000 - answers["sent"]


async def test_sockets_per_member_are_capped(app: Quart, db: Database) -> None:
    """Three chat sockets are accepted for one member; the fourth is 429; closing one frees a place."""
    ada, bob = await new_profile(db, "Ada"), await new_profile(db, "Bob")
    client = app.test_client()
    async with (
        client.websocket("/v1/chat", headers=auth(ada)) as one,
        client.websocket("/v1/chat", headers=auth(ada)) as two,
    ):
        for ws in (one, two):
            assert (await receive(ws))["type"] == "history"
        async with client.websocket("/v1/chat", headers=auth(ada)) as three:
            assert (await receive(three))["type"] == "history"
            with pytest.raises(WebsocketResponseError) as info:
                async with client.websocket("/v1/chat", headers=auth(ada)) as four:
                    await four.receive()
            assert info.value.response.status_code == 429
            assert (await info.value.response.get_json())["error"]["code"] == "rate_limited"
            async with client.websocket("/v1/chat", headers=auth(bob)) as other:
                assert (await receive(other))["type"] == "history"
        async with client.websocket("/v1/chat", headers=auth(ada)) as again:
            assert (await receive(again))["type"] == "history"
