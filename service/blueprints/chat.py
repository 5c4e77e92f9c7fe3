"""Global chat over a websocket: history on connect, then everyone's messages live."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from quart import Blueprint, g, websocket

from service.blueprints.events import TOKEN_EXPIRED
from service.lib.access import require_member_websocket
from service.lib.api_error import APIError
from service.lib.context import current_settings, get_db, get_relay, get_rpc
from service.lib.relay import ChatWake
from service.lib.strict_json import JSONRefused, parse_json_text
from xpbase.errors import DomainError
from xpbase.models.chat import ChatMessage

blueprint = Blueprint("chat", __name__)


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _message_json(row: Any) -> dict[str, Any]:
    """A chat_messages row as sent to clients (times in ISO 8601 UTC)."""
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


# Close codes (RFC 6455 7.4.1).
INVALID_PAYLOAD = 1007
MESSAGE_TOO_BIG = 1009
MAX_FRAME_CHARS = 8192
"""Longest text frame accepted (characters); the database's own body limit is far below it."""


class FrameRefused(Exception):
    """A frame that ends the socket: ``code`` is the close code, ``reason`` the close reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class FrameError(Exception):
    """A frame answered with an error frame; the socket stays open."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _body_of(raw: str | bytes) -> str:
    """The message of a client frame: JSON ``{"body": "..."}`` or the plain text.

    FrameRefused (1007) for a binary frame (the protocol is text; hypercorn
    already refuses text frames that are not UTF-8 with 1007), (1009) for a
    frame over MAX_FRAME_CHARS or JSON nested too deep; FrameError
    ``invalid_argument`` for a NUL character, which Postgres text cannot hold.
    """
    if isinstance(raw, bytes):
        raise FrameRefused(INVALID_PAYLOAD, "binary frames are not accepted: send UTF-8 text")
    if len(raw) > MAX_FRAME_CHARS:
        raise FrameRefused(MESSAGE_TOO_BIG, f"frames are at most {MAX_FRAME_CHARS} characters")
    body = raw
    if raw.lstrip().startswith(("{", "[")):
        try:
            data = parse_json_text(raw)
        except JSONRefused as exc:
            if exc.kind == "depth":
                raise FrameRefused(MESSAGE_TOO_BIG, str(exc)) from exc
            if exc.kind == "nul":
                raise FrameError("invalid_argument", "Messages may not contain NUL characters.") from exc
            data = None  # not JSON after all: the plain text is the message
        if isinstance(data, dict) and isinstance(data.get("body"), str):
            body = data["body"]
    if "\x00" in body:
        raise FrameError("invalid_argument", "Messages may not contain NUL characters.")
    return body


class TokenBucket:
    """A token bucket: ``burst`` tokens, refilled at ``rate`` per second (time.monotonic)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.updated = time.monotonic()

    def take(self) -> bool:
        """Spend one token: True when there was one, False when the caller must wait."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


async def _relay_messages(queue: asyncio.Queue[Any], last_id: int) -> None:
    """Send the stored messages after last_id whenever the relay says one may be new (never its payload)."""
    while True:
        event = await queue.get()
        if isinstance(event, ChatWake) and event.id <= last_id:
            continue
        for item in await _history(last_id):
            if item["id"] > last_id:
                await websocket.send_json({"type": "message", "message": item})
                last_id = item["id"]


async def _post_messages(bucket: TokenBucket) -> None:
    while True:
        raw = await websocket.receive()
        try:
            body = _body_of(raw)
        except FrameError as exc:
            await websocket.send_json({"type": "error", "error": {"code": exc.code, "message": exc.message}})
            continue
        if not bucket.take():
            await websocket.send_json(
                {"type": "error", "error": {"code": "rate_limited", "message": "Slow down: too many frames."}}
            )
            continue
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
    author_name, body, created_at}}``, read from the table as the caller.
    Send a text frame with the message (or JSON ``{"body": "..."}``) to post:
    the socket allows ``XPBASE_CHAT_SOCKET_BURST`` frames at once and
    ``XPBASE_CHAT_SOCKET_RATE`` a second after that without asking the
    database, which then applies its own length and rate limits
    (``post_chat_message``); the poster gets ``{"type": "sent", "id": n}`` or
    ``{"type": "error", "error": {code, message}}`` (``invalid_argument``,
    ``rate_limited``). A member may hold ``XPBASE_CHAT_MAX_SOCKETS_PER_MEMBER``
    chat sockets per service process: one more is refused with 429
    ``rate_limited`` before the upgrade. Closes with 1007 for a binary
    frame, 1009 for a frame over 8192 characters or JSON nested too deep, and
    4401 when the token expires.
    """
    relay = get_relay()
    settings = current_settings()
    if relay.chat_sockets(g.profile_id) >= settings.chat_max_sockets_per_member:
        raise APIError(
            429,
            "rate_limited",
            f"At most {settings.chat_max_sockets_per_member} chat connections per member.",
        )
    bucket = TokenBucket(settings.chat_socket_rate, settings.chat_socket_burst)
    with relay.chat_events(g.profile_id) as queue:
        await websocket.accept()
        history = await _history()
        await websocket.send_json({"type": "history", "messages": history})
        last_id = history[-1]["id"] if history else 0
        tasks = [
            asyncio.create_task(_relay_messages(queue, last_id)),
            asyncio.create_task(_post_messages(bucket)),
        ]
        try:
            done, _ = await asyncio.wait(
                tasks,
                timeout=max(float(g.claims["exp"]) - time.time(), 0),
                return_when=asyncio.FIRST_EXCEPTION,
            )
            for task in done:
                try:
                    task.result()
                except FrameRefused as exc:
                    await websocket.close(exc.code, exc.reason)
                    return
            await websocket.close(TOKEN_EXPIRED, "token expired")
        finally:
            for task in tasks:
                task.cancel()
