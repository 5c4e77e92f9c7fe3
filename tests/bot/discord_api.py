"""A stand-in for Discord's HTTP API (REST v10 and the CDN) on loopback.

discord.py talks to it exactly as to discord.com (the tests point
``discord.http.Route.BASE`` and ``discord.Asset.BASE`` here): logging in,
syncing commands, interaction callbacks, follow-ups and edits (webhooks),
channel messages, DMs, role changes and avatars. Every request is recorded
(JSON bodies and multipart files) so tests can read what the bot answered;
responses are the payloads Discord returns, so discord.py parses them as it
would in production.
"""

from __future__ import annotations

import io
import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from PIL import Image

APP_ID = 900_000_000_000_000_001
BOT_USER = {
    "id": str(APP_ID),
    "username": "xpbase",
    "discriminator": "0",
    "global_name": "xpbase",
    "avatar": None,
    "bot": True,
    "flags": 0,
    "mfa_enabled": True,
    "verified": True,
}
AVATAR_COLOUR = (220, 40, 60)
EPHEMERAL = 1 << 6


def png(colour: tuple[int, int, int], size: int = 128) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(out, format="PNG")
    return out.getvalue()


@dataclass
class Recorded:
    """One request the bot made: method, path (after /api/v10), JSON body (payload_json for multipart),
    attached files (name -> bytes)."""

    method: str
    path: str
    body: Any = None
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def content(self) -> str | None:
        data = self.body.get("data", self.body) if isinstance(self.body, dict) else {}
        return data.get("content") if isinstance(data, dict) else None

    @property
    def embeds(self) -> list[dict[str, Any]]:
        data = self.body.get("data", self.body) if isinstance(self.body, dict) else {}
        return (data.get("embeds") or []) if isinstance(data, dict) else []

    @property
    def flags(self) -> int:
        data = self.body.get("data", self.body) if isinstance(self.body, dict) else {}
        return int((data.get("flags") or 0) if isinstance(data, dict) else 0)

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def text(self) -> str:
        """Content and embed text together, for assertions on what a member reads."""
        parts = [self.content or ""]
        for embed in self.embeds:
            parts += [embed.get("title") or "", embed.get("description") or ""]
            parts += [f"{f['name']}: {f['value']}" for f in embed.get("fields") or []]
        return "\n".join(p for p in parts if p)


def _json(data: Any, status: int = 200) -> web.Response:
    # discord.py decodes a body only when Content-Type is exactly application/json, as Discord sends it.
    return web.Response(body=json.dumps(data).encode(), status=status, content_type="application/json")


class DiscordStandIn:
    """The stand-in server. ``requests`` holds everything received, in order."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.base_url = ""
        self._ids = itertools.count(1_100_000_000_000_000_000)
        self._runner: web.AppRunner | None = None
        self.refuse_roles = False  # answer role changes with 403 Missing Permissions
        self.refuse_dms = False  # answer DMs with 403 Cannot send messages to this user (DMs closed)
        self.dm_channels: set[str] = set()
        self.token = "test-token"  # the bot token Discord accepts
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_route("*", "/api/v10/{path:.*}", self._api)
        app.router.add_get("/avatars/{user}/{file}", self._avatar)
        app.router.add_get("/embed/avatars/{file}", self._avatar)
        self.app = app

    async def start(self) -> str:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # What the bot did ---------------------------------------------------------------

    def find(self, method: str, pattern: str) -> list[Recorded]:
        """Requests whose method matches and whose path matches the regular expression ``pattern`` in full."""
        regex = re.compile(pattern)
        return [r for r in self.requests if r.method == method and regex.fullmatch(r.path)]

    def replies(self, interaction_id: int | None = None) -> list[Recorded]:
        """Interaction callbacks and follow-ups that carry a message (not bare defers), oldest first."""
        found = []
        for r in self.requests:
            if r.method == "POST" and re.fullmatch(r"interactions/\d+/[^/]+/callback", r.path):
                if interaction_id is not None and not r.path.startswith(f"interactions/{interaction_id}/"):
                    continue
                if r.body.get("type") == 4:
                    found.append(r)
            elif r.method == "POST" and re.fullmatch(rf"webhooks/{APP_ID}/[^/]+", r.path):
                if interaction_id is not None and f"tok-{interaction_id}" not in r.path:
                    continue
                found.append(r)
        return found

    def last_reply(self, interaction_id: int | None = None) -> Recorded:
        found = self.replies(interaction_id)
        assert found, f"no reply; requests: {[(r.method, r.path) for r in self.requests]}"
        return found[-1]

    def channel_messages(self, channel_id: int | None = None) -> list[Recorded]:
        return self.find(
            "POST", rf"channels/{channel_id}/messages" if channel_id else r"channels/\d+/messages"
        )

    def role_changes(self) -> list[tuple[str, int, int]]:
        """("add" | "remove", member id, role id) for every role request, in order."""
        changes = []
        for r in self.requests:
            match = re.fullmatch(r"guilds/\d+/members/(\d+)/roles/(\d+)", r.path)
            if match and r.method in ("PUT", "DELETE"):
                changes.append(("add" if r.method == "PUT" else "remove", int(match[1]), int(match[2])))
        return changes

    # The API ----------------------------------------------------------------------------

    def message(
        self, channel_id: str, body: dict[str, Any], files: dict[str, bytes] | None = None, flags: int = 0
    ) -> dict[str, Any]:
        """The message object Discord returns for a created message."""
        attachments = [
            {
                "id": str(next(self._ids)),
                "filename": name,
                "size": len(data),
                "url": f"{self.base_url}/a/{name}",
                "proxy_url": f"{self.base_url}/a/{name}",
            }
            for name, data in (files or {}).items()
        ]
        return {
            "id": str(next(self._ids)),
            "channel_id": str(channel_id),
            "author": BOT_USER,
            "content": body.get("content") or "",
            "timestamp": "2026-11-21T04:00:00.000000+00:00",
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": attachments,
            "embeds": body.get("embeds") or [],
            "components": body.get("components") or [],
            "pinned": False,
            "type": 0,
            "flags": int(body.get("flags") or flags or 0),
        }

    async def _read(self, request: web.Request) -> tuple[Any, dict[str, bytes]]:
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            body: Any = json.loads(str(form.get("payload_json") or "{}"))
            files = {}
            for key, value in form.items():
                if key != "payload_json" and hasattr(value, "file"):
                    files[value.filename] = value.file.read()
            return body, files
        if request.can_read_body:
            text = await request.text()
            return (json.loads(text) if text else None), {}
        return None, {}

    async def _api(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        body, files = await self._read(request)
        self.requests.append(Recorded(request.method, path, body, files))
        method = request.method

        if method == "GET" and path == "users/@me":
            if request.headers.get("Authorization") != f"Bot {self.token}":
                return _json({"message": "401: Unauthorized", "code": 0}, status=401)
            return _json(BOT_USER)
        if method == "GET" and path == "oauth2/applications/@me":
            return _json(
                {
                    "id": str(APP_ID),
                    "name": "xpbase",
                    "icon": None,
                    "description": "",
                    "bot_public": True,
                    "bot_require_code_grant": False,
                    "owner": {**BOT_USER, "id": "1", "bot": False},
                    "verify_key": "0" * 64,
                    "flags": 0,
                    "team": None,
                    "summary": "",
                }
            )
        if method == "PUT" and re.fullmatch(r"applications/\d+(/guilds/\d+)?/commands", path):
            return _json(
                [
                    {
                        **cmd,
                        "id": str(next(self._ids)),
                        "application_id": str(APP_ID),
                        "version": "1",
                        "default_member_permissions": cmd.get("default_member_permissions"),
                    }
                    for cmd in body or []
                ]
            )
        if match := re.fullmatch(r"interactions/(\d+)/([^/]+)/callback", path):
            kind = body.get("type")
            data = body.get("data") or {}
            response: dict[str, Any] = {
                "interaction": {
                    "id": match[1],
                    "type": 2,
                    "response_message_loading": kind == 5,
                    "response_message_ephemeral": bool(int(data.get("flags") or 0) & EPHEMERAL),
                }
            }
            if kind in (4, 5):
                message = self.message("0", data, files)
                response["interaction"]["response_message_id"] = message["id"]
                response["resource"] = {"type": kind, "message": message}
            return _json(response)
        if match := re.fullmatch(rf"webhooks/{APP_ID}/([^/]+)(/messages/([^/]+))?", path):
            if method == "DELETE":
                return web.Response(status=204)
            return _json(self.message("0", body or {}, files))
        if match := re.fullmatch(r"channels/(\d+)/messages", path):
            if self.refuse_dms and match[1] in self.dm_channels:
                return _json({"message": "Cannot send messages to this user", "code": 50007}, status=403)
            return _json(self.message(match[1], body or {}, files))
        if method == "POST" and path == "users/@me/channels":
            dm_id = str(next(self._ids))
            self.dm_channels.add(dm_id)
            return _json(
                {
                    "id": dm_id,
                    "type": 1,
                    "last_message_id": None,
                    "recipients": [
                        {
                            "id": body["recipient_id"],
                            "username": "member",
                            "discriminator": "0",
                            "avatar": None,
                        }
                    ],
                }
            )
        if re.fullmatch(r"guilds/\d+/members/\d+/roles/\d+", path) and method in ("PUT", "DELETE"):
            if self.refuse_roles:
                return _json({"message": "Missing Permissions", "code": 50013}, status=403)
            return web.Response(status=204)
        return _json({"message": f"stand-in has no route for {method} {path}", "code": 0}, status=404)

    async def _avatar(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=png(AVATAR_COLOUR), content_type="image/png")
