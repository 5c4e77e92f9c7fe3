"""Stand-ins for the delivery channels on loopback, spoken to by the real client libraries.

- ``FCMStandIn``: Google's OAuth token endpoint for service accounts (checks the
  RS256 JWT assertion google-auth signs with the key file's private key) and FCM
  HTTP v1 ``POST /v1/projects/{id}/messages:send`` (checks the bearer token;
  answers as FCM does: ``{"name": ...}``, or errors with ``FcmError`` details
  such as ``UNREGISTERED``). ``service_account_file`` writes a key file whose
  ``token_uri`` points here.
- ``WebPushStandIn``: a push service endpoint per subscription. It checks the
  VAPID ``Authorization: vapid t=<ES256 JWT>, k=<key>`` header, decrypts the
  aes128gcm body with the subscription's private key and auth secret
  (``http_ece``), and keeps one message per ``Topic`` as RFC 8030 §5.4 says.
- ``SMTPStandIn``: a real aiosmtpd server that keeps what it received.

``script`` queues canned answers per target (``("status", 503, {"Retry-After": "2"})``,
``("unregistered",)``, ``("hang",)``: hold the request open until the test stops the server).
Every request is recorded.
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import json
import os
import secrets
import socket
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import http_ece
import jwt
from aiohttp import web
from aiosmtpd.controller import Controller
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

PROJECT = "xpbase-test"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class _Server:
    def __init__(self) -> None:
        self.app = web.Application()
        self.runner: web.AppRunner | None = None
        self.base = ""
        self.scripts: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        self.hanging = asyncio.Event()  # set once a request is held open

    async def start(self) -> str:
        self.runner = web.AppRunner(self.app, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}"
        return self.base

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def script(self, target: str, *answers: tuple[Any, ...]) -> None:
        """Answer the next requests for ``target`` with ``answers``, in order (then: success)."""
        self.scripts[target].extend(answers)

    async def _scripted(self, target: str) -> web.Response | None:
        if not self.scripts[target]:
            return None
        answer = self.scripts[target].pop(0)
        if answer[0] == "hang":
            self.hanging.set()
            await asyncio.sleep(3600)
        if answer[0] == "status":
            return web.json_response(
                {"error": {"code": answer[1], "message": "scripted"}},
                status=answer[1],
                headers=answer[2] if len(answer) > 2 else None,
            )
        return None


class FCMStandIn(_Server):
    """FCM HTTP v1 and the service account token endpoint."""

    def __init__(self) -> None:
        super().__init__()
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.tokens: set[str] = set()
        self.token_requests = 0
        self.sent: list[dict[str, Any]] = []  # accepted messages
        self.requests: list[dict[str, Any]] = []  # every messages:send body
        self.app.router.add_post("/token", self._token)
        self.app.router.add_post("/v1/projects/{project}/messages:send", self._send)

    def service_account_file(self, folder: Path) -> Path:
        """A service account key file as the Firebase console downloads it, with token_uri pointing here."""
        pem = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        info = {
            "type": "service_account",
            "project_id": PROJECT,
            "private_key_id": "standin-key-1",
            "private_key": pem,
            "client_email": f"firebase-adminsdk@{PROJECT}.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": f"{self.base}/token",
        }
        path = folder / "service-account.json"
        path.write_text(json.dumps(info), encoding="utf-8")
        return path

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        try:
            claims = jwt.decode(
                str(form.get("assertion")),
                self.key.public_key(),
                algorithms=["RS256"],
                audience="https://oauth2.googleapis.com/token",  # google-auth's aud, whatever the token_uri
            )
        except jwt.PyJWTError as exc:
            return web.json_response({"error": "invalid_grant", "error_description": str(exc)}, status=400)
        if "firebase.messaging" not in claims.get("scope", ""):
            return web.json_response({"error": "invalid_scope"}, status=400)
        token = "ya29." + secrets.token_urlsafe(24)
        self.tokens.add(token)
        self.token_requests += 1
        return web.json_response({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    async def _send(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        if request.match_info["project"] != PROJECT or auth.removeprefix("Bearer ") not in self.tokens:
            return web.json_response({"error": {"code": 401, "status": "UNAUTHENTICATED"}}, status=401)
        body = await request.json()
        self.requests.append(body)
        message = body["message"]
        token = message["token"]
        scripted = await self._scripted(token)
        if scripted is not None:
            return scripted
        if self.scripts.get(f"unregistered:{token}") is not None:
            return web.json_response(
                {
                    "error": {
                        "code": 404,
                        "message": "Requested entity was not found.",
                        "status": "NOT_FOUND",
                        "details": [
                            {
                                "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                                "errorCode": "UNREGISTERED",
                            }
                        ],
                    }
                },
                status=404,
            )
        self.sent.append(message)
        return web.json_response({"name": f"projects/{PROJECT}/messages/{len(self.sent)}"})

    def unregister(self, token: str) -> None:
        """From now on FCM answers UNREGISTERED for ``token`` (the app was uninstalled)."""
        self.scripts[f"unregistered:{token}"] = []


@dataclass
class Subscription:
    """A browser's push subscription: endpoint, the key pair it keeps, and its auth secret."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes

    @property
    def p256dh(self) -> str:
        return b64url(
            self.private_key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )

    @property
    def auth(self) -> str:
        return b64url(self.auth_secret)


@dataclass
class PushMessage:
    """One message a push service accepted, decrypted."""

    subscription: str
    topic: str | None
    payload: dict[str, Any]
    vapid_sub: str


class WebPushStandIn(_Server):
    """A push service: ``POST /push/{id}`` per subscription, VAPID checked, payload decrypted."""

    def __init__(self) -> None:
        super().__init__()
        self.subscriptions: dict[str, Subscription] = {}
        self.posts: list[PushMessage] = []  # every accepted POST
        self.by_topic: dict[tuple[str, str], PushMessage] = {}  # what a device is shown (one per topic)
        self.refused: list[str] = []
        self.vapid_public_key: ec.EllipticCurvePublicKey | None = None
        self.app.router.add_post("/push/{id}", self._push)

    def subscribe(self) -> Subscription:
        sub_id = secrets.token_hex(8)
        sub = Subscription(
            f"{self.base}/push/{sub_id}", ec.generate_private_key(ec.SECP256R1()), os.urandom(16)
        )
        self.subscriptions[sub_id] = sub
        return sub

    def expire(self, sub: Subscription) -> None:
        """The browser dropped the subscription: the endpoint answers 410 Gone from now on."""
        self.subscriptions.pop(sub.endpoint.rsplit("/", 1)[1], None)

    async def _push(self, request: web.Request) -> web.Response:
        sub = self.subscriptions.get(request.match_info["id"])
        if sub is None:
            return web.Response(status=410, text="subscription expired")
        auth = request.headers.get("Authorization", "")
        try:
            scheme, _, params = auth.partition(" ")
            parts = dict(p.strip().split("=", 1) for p in params.split(","))
            key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(parts["k"]))
            claims = jwt.decode(parts["t"], key, algorithms=["ES256"], audience=self.base)
            assert scheme == "vapid"
        except Exception as exc:
            self.refused.append(f"vapid: {exc}")
            return web.Response(status=403, text="bad VAPID")
        if (
            self.vapid_public_key is not None
            and key.public_numbers() != self.vapid_public_key.public_numbers()
        ):
            return web.Response(status=403, text="unknown VAPID key")
        body = await request.read()
        if self.scripts[sub.endpoint] and self.scripts[sub.endpoint][0][0] != "hang":
            scripted = await self._scripted(sub.endpoint)
            if scripted is not None:
                return scripted
        if request.headers.get("Content-Encoding") != "aes128gcm":
            return web.Response(status=415)
        plain = http_ece.decrypt(
            body, private_key=sub.private_key, auth_secret=sub.auth_secret, version="aes128gcm"
        )
        message = PushMessage(sub.endpoint, request.headers.get("Topic"), json.loads(plain), claims["sub"])
        self.posts.append(message)
        if message.topic:
            self.by_topic[(sub.endpoint, message.topic)] = message
        await self._scripted(sub.endpoint)  # "hang": accepted, but the answer never comes
        return web.Response(status=201, headers={"Location": f"{self.base}/msg/{len(self.posts)}"})

    def shown(self, sub: Subscription) -> list[PushMessage]:
        """What the device shows: one message per topic, plus messages without a topic."""
        untopical = [m for m in self.posts if m.subscription == sub.endpoint and not m.topic]
        return untopical + [m for (ep, _), m in self.by_topic.items() if ep == sub.endpoint]


@dataclass
class SMTPStandIn:
    """A real SMTP server (aiosmtpd) on loopback that keeps every message it accepted."""

    messages: list[email.message.EmailMessage] = field(default_factory=list)
    envelopes: list[Any] = field(default_factory=list)
    controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"

    def start(self) -> int:
        with socket.socket() as probe:  # aiosmtpd checks the port it was given, so it needs a real one
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        self.controller = Controller(self, hostname="127.0.0.1", port=port)
        self.controller.start()
        return port

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
