"""Live events: the signed-in member's notifications over a websocket, as they happen."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from quart import Blueprint, g, websocket

from service.lib.access import require_member_websocket
from service.lib.context import get_db, get_relay
from service.lib.relay import NOTIFICATION_COLUMNS, Resync, notification_json

blueprint = Blueprint("events", __name__)

TOKEN_EXPIRED = 4401  # private-use close code: reconnect with a fresh token


async def _notifications_after(after_id: int) -> list[dict[str, Any]]:
    """The caller's notifications with id > after_id, oldest first, read as the member (RLS)."""
    async with get_db().as_member(g.profile_id, g.claims) as conn:
        rows = await conn.fetch(
            f"select {NOTIFICATION_COLUMNS} from public.notifications"
            " where profile_id = (select auth.uid()) and id > $1 order by id limit 500",
            after_id,
        )
    return [notification_json(row) for row in rows]


async def _newest_id() -> int:
    async with get_db().as_member(g.profile_id, g.claims) as conn:
        return int(
            await conn.fetchval(
                "select coalesce(max(id), 0) from public.notifications where profile_id = (select auth.uid())"
            )
        )


@blueprint.websocket("/v1/events")
@require_member_websocket
async def ws_events() -> None:
    """The signed-in member's notifications, live: level-ups, tier-ups, streak milestones, season results.

    Token: ``Authorization: Bearer <jwt>`` or ``?token=<jwt>`` (browsers cannot
    set websocket headers); a bad or missing token is refused with 401 before
    the upgrade. ``?since=<id>`` first sends the member's notifications with a
    larger id (to catch up after a reconnect). The first message is
    ``{"type": "ready", "last_id": n}`` (the newest id already there); then each is JSON
    ``{"type": "notification", "notification": {id, kind, title, body, data,
    created_at, read_at}}``. Nothing is lost when the service's database
    connection drops: after reconnecting it re-reads what came in meanwhile.
    The socket closes with code 4401 when the token expires.
    """
    relay = get_relay()
    expires_at = float(g.claims["exp"])
    with relay.member_events(g.profile_id) as queue:
        await websocket.accept()
        since = websocket.args.get("since", type=int)
        last_id = await _newest_id() if since is None else since
        await websocket.send_json({"type": "ready", "last_id": last_id})
        if since is not None:
            for item in await _notifications_after(since):
                await websocket.send_json({"type": "notification", "notification": item})
                last_id = max(last_id, item["id"])
        while True:
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancellation that lands as
                # the queue hands over an event (python/cpython#86296), and the handler then outlived its
                # client until the token expired.
                async with asyncio.timeout(max(expires_at - time.time(), 0)):
                    event = await queue.get()
            except TimeoutError:
                await websocket.close(TOKEN_EXPIRED, "token expired")
                return
            items = await _notifications_after(last_id) if isinstance(event, Resync) else [event]
            for item in items:
                if item["id"] > last_id:
                    await websocket.send_json({"type": "notification", "notification": item})
                    last_id = item["id"]
