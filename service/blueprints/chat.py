"""Global chat over a websocket: history on connect, then everyone's messages live."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

from quart import Blueprint, g, websocket

from service.blueprints.events import TOKEN_EXPIRED
from service.lib.access import require_member_websocket
from service.lib.context import get_db, get_relay, get_rpc
from service.lib.relay import Resync
from xpbase.errors import DomainError
from xpbase.models.chat import ChatMessage

blueprint = Blueprint("chat", __name__)


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _message_json(row: Any) -> dict[str, Any]:
    """A chat_messages row in the shape the database sends on xpbase_chat."""
    return {
        "id": row["id"],
        "profile_id": str(row["profile_id"]),
        "author_name": row["author_name"],
        "body": row["body"],
        "created_at": _utc_text(row["created_at"]),
    }


async def _history(after_id: int | None = None) -> list[dict[str, Any]]:
    """The newest chat_settings.history_size messages (or all after after_id, up to 500), oldest first."""
    async with get_db().as_member(g.profile_id, g.claims) as conn:
        if after_id is None:
            rows = await conn.fetch(
                "select * from public.chat_history((select history_size from public.chat_settings limit 1))"
            )
        else:
            rows = await conn.fetch(
                "select * from public.chat_messages where id > $1 order by id limit 500", after_id
            )
    return [_message_json(row) for row in rows]


def _body_of(raw: str | bytes) -> str:
    """A client frame is either JSON {"body": "..."} or the plain text of the message."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    try:
        data = json.loads(text)
    except ValueError:
        return text
    if isinstance(data, dict) and isinstance(data.get("body"), str):
        return data["body"]
    return text


async def _relay_messages(queue: asyncio.Queue[Any], last_id: int) -> None:
    while True:
        event = await queue.get()
        items = await _history(last_id) if isinstance(event, Resync) else [event]
        for item in items:
            if item["id"] > last_id:
                await websocket.send_json({"type": "message", "message": item})
                last_id = item["id"]


async def _post_messages() -> None:
    while True:
        body = _body_of(await websocket.receive())
        try:
            message: ChatMessage = await get_rpc().call(
                "post_chat_message", role="authenticated", claims=g.claims, body=body
            )
        except DomainError as exc:
            await websocket.send_json({"type": "error", "error": {"code": exc.code, "message": exc.message}})
            continue
        await websocket.send_json({"type": "sent", "id": message.id})


@blueprint.websocket("/v1/chat")
@require_member_websocket
async def ws_chat() -> None:
    """The global chat for signed-in members.

    Token as for ``/v1/events`` (header or ``?token=``). On connect:
    ``{"type": "history", "messages": [...]}`` with the last 50 messages
    (chat_settings.history_size), oldest first; then every new message, from
    any service process, as ``{"type": "message", "message": {id, profile_id,
    author_name, body, created_at}}``. Send a frame with the text (or JSON
    ``{"body": "..."}``) to post: the database applies the length limit and
    the rate limit (``post_chat_message``); the poster gets ``{"type": "sent",
    "id": n}`` or ``{"type": "error", "error": {code, message}}``
    (``invalid_argument``, ``rate_limited``). Closes with 4401 when the token expires.
    """
    relay = get_relay()
    with relay.chat_events() as queue:
        await websocket.accept()
        history = await _history()
        await websocket.send_json({"type": "history", "messages": history})
        last_id = history[-1]["id"] if history else 0
        tasks = [asyncio.create_task(_relay_messages(queue, last_id)), asyncio.create_task(_post_messages())]
        try:
            done, _ = await asyncio.wait(
                tasks,
                timeout=max(float(g.claims["exp"]) - time.time(), 0),
                return_when=asyncio.FIRST_EXCEPTION,
            )
            for task in done:
                task.result()
            await websocket.close(TOKEN_EXPIRED, "token expired")
        finally:
            for task in tasks:
                task.cancel()
