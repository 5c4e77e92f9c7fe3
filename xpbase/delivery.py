"""Sending one delivery of the outbox on its channel: FCM HTTP v1, Web Push, email.

Each sender returns an Outcome that ``service_role_finish_delivery`` records:
``sent``; ``retry`` (a network error, a timeout, 429 or 5xx: again after the
receiver's ``Retry-After`` when it gave one, else after the backoff);
``failed`` (refused for good: dead); ``gone`` (FCM ``UNREGISTERED``, Web Push
404/410: the device is deleted).

Each delivery carries the idempotency key ``xpbase-delivery-<id>`` to the
receiver: FCM (``data.delivery_id``, ``android.collapse_key``,
``apns-collapse-id``: a device shows one of them), Web Push (the ``Topic``
header: a push service keeps one undelivered message per topic, RFC 8030 §5.4),
email (``Message-ID``). A worker that dies after the receiver accepted a message
and before recording it sends it again once its lease ends (at least once);
those keys are how receivers see one message.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC
from typing import Any, Literal

import aiohttp
import httpx
from google.auth.transport.requests import Request as GoogleRequest
from google.oauth2 import service_account
from py_vapid import Vapid
from pywebpush import WebPushException, webpush_async

from xpbase import mail
from xpbase.models.outbox import Delivery
from xpbase.settings import Settings

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


@dataclass(frozen=True)
class Outcome:
    """How one attempt went: what service_role_finish_delivery records."""

    outcome: Literal["sent", "retry", "failed", "gone"]
    error: str | None = None
    retry_after_seconds: int | None = None


def retry_after(value: str | None, *, now: float | None = None) -> int | None:
    """Seconds to wait from an HTTP ``Retry-After`` value (delay-seconds or an HTTP date), at most a week."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(int(value), 604800)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = when.timestamp() - (now if now is not None else time.time())
    return max(0, min(int(seconds + 0.999), 604800))


def _http_outcome(status: int, headers: Any, body: str) -> Outcome:
    error = f"HTTP {status}: {body[:300]}"
    if status == 429 or status >= 500:
        return Outcome("retry", error, retry_after(headers.get("Retry-After")))
    return Outcome("failed", error)


def message_text(delivery: Delivery) -> tuple[str, str]:
    """Title and body of a delivery as people read them (a collapsed burst says how many it stands for)."""
    body = delivery.body
    if delivery.collapsed:
        more = f"(+{delivery.collapsed} more)"
        body = f"{body} {more}".strip()
    return delivery.title, body


class FCMSender:
    """FCM HTTP v1: ``POST {endpoint}/v1/projects/{project}/messages:send`` with a service account's token.

    google-auth signs the service account's JWT and trades it for an access
    token at the key file's ``token_uri`` (refreshed when it nears expiry).
    """

    def __init__(self, settings: Settings, client: httpx.AsyncClient) -> None:
        if not settings.fcm_project_id or settings.fcm_service_account_file is None:
            raise ValueError("FCM needs XPBASE_FCM_PROJECT_ID and XPBASE_FCM_SERVICE_ACCOUNT_FILE")
        self.url = f"{settings.fcm_endpoint.rstrip('/')}/v1/projects/{settings.fcm_project_id}/messages:send"
        self.credentials = service_account.Credentials.from_service_account_file(
            str(settings.fcm_service_account_file), scopes=[FCM_SCOPE]
        )
        self.client = client
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        """A valid access token (refreshed in a thread: google-auth's transport is synchronous)."""
        async with self._lock:
            if not self.credentials.valid:
                await asyncio.to_thread(self.credentials.refresh, GoogleRequest())
            return str(self.credentials.token)

    async def send(self, delivery: Delivery) -> Outcome:
        title, body = message_text(delivery)
        key = delivery.idempotency_key
        message = {
            "message": {
                "token": delivery.target,
                "notification": {"title": title, "body": body},
                "data": {
                    "delivery_id": key,
                    "kind": delivery.kind,
                    "notification_id": str(delivery.notification_id),
                },
                "android": {"collapse_key": key},
                "apns": {"headers": {"apns-collapse-id": key[-64:]}},
            }
        }
        try:
            response = await self.client.post(
                self.url, json=message, headers={"Authorization": f"Bearer {await self.token()}"}
            )
        except (httpx.HTTPError, OSError) as exc:
            return Outcome("retry", f"FCM: {type(exc).__name__}: {exc}")
        if response.status_code == 200:
            return Outcome("sent")
        codes = set()
        try:
            error = response.json().get("error", {})
            codes = {d.get("errorCode") for d in error.get("details", []) if isinstance(d, dict)}
        except (ValueError, AttributeError):
            pass
        if "UNREGISTERED" in codes:
            return Outcome("gone", "FCM: UNREGISTERED")
        if response.status_code == 401:  # a stale token: fetch a new one next time
            self.credentials.token = None
            return Outcome("retry", "FCM: 401")
        return _http_outcome(response.status_code, response.headers, response.text)


class WebPushSender:
    """Web Push (RFC 8030/8291/8292) through pywebpush, signed with the VAPID key from settings."""

    def __init__(self, settings: Settings, session: aiohttp.ClientSession) -> None:
        raw = settings.vapid_private_key.get_secret_value().strip()
        if not raw:
            raise ValueError("Web Push needs XPBASE_VAPID_PRIVATE_KEY")
        if raw.startswith("-----BEGIN"):
            self.vapid = Vapid.from_pem(raw.encode())
        elif os.path.isfile(raw):
            self.vapid = Vapid.from_file(raw)
        else:
            self.vapid = Vapid.from_raw(raw.encode())
        self.subject = settings.vapid_subject
        self.session = session
        self.timeout = settings.delivery_timeout_seconds

    async def send(self, delivery: Delivery) -> Outcome:
        title, body = message_text(delivery)
        payload = json.dumps(
            {
                "title": title,
                "body": body,
                "kind": delivery.kind,
                "notification_id": delivery.notification_id,
                "delivery_id": delivery.idempotency_key,
            }
        )
        try:
            response = await webpush_async(
                subscription_info={
                    "endpoint": delivery.target,
                    "keys": {"p256dh": delivery.p256dh or "", "auth": delivery.auth or ""},
                },
                data=payload,
                vapid_private_key=self.vapid,
                vapid_claims={"sub": self.subject},
                ttl=86400,
                timeout=self.timeout,  # type: ignore[arg-type]
                headers={"Topic": f"d{delivery.id}", "Urgency": "normal"},
                aiohttp_session=self.session,
            )
        except WebPushException as exc:
            return Outcome("retry", f"Web Push: {exc}")
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return Outcome("retry", f"Web Push: {type(exc).__name__}: {exc}")
        assert not isinstance(response, str)
        if 200 <= response.status < 300:
            return Outcome("sent")
        text = await response.text()
        if response.status in (404, 410):
            return Outcome("gone", f"Web Push: HTTP {response.status}")
        return _http_outcome(response.status, response.headers, text)


class EmailSender:
    """Email through xpbase.mail, with the notification template; Message-ID carries the idempotency key."""

    def __init__(self, settings: Settings) -> None:
        if not mail.configured(settings):
            raise ValueError("email needs XPBASE_SMTP_HOST")
        self.settings = settings
        sender_domain = email.utils.parseaddr(settings.smtp_from)[1].rpartition("@")[2]
        self.domain = sender_domain or "localhost"

    async def send(self, delivery: Delivery) -> Outcome:
        message = mail.render(
            "notification",
            subject=delivery.title,
            to=delivery.target,
            message_id=f"<{delivery.idempotency_key}@{self.domain}>",
            display_name=delivery.display_name,
            title=delivery.title,
            body=delivery.body,
            collapsed=delivery.collapsed,
            kind=delivery.kind,
        )
        try:
            await mail.send(message, self.settings)
        except mail.MailError as exc:
            return Outcome("failed" if exc.permanent else "retry", str(exc))
        return Outcome("sent")


class Senders:
    """The configured channels of one worker: FCM, Web Push and email, each only when its settings are set."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.http = httpx.AsyncClient(timeout=settings.delivery_timeout_seconds)
        self.session: aiohttp.ClientSession | None = None
        self.fcm = FCMSender(settings, self.http) if settings.fcm_project_id else None
        self.email = EmailSender(settings) if mail.configured(settings) else None
        self._webpush_configured = bool(settings.vapid_private_key.get_secret_value())
        self.webpush: WebPushSender | None = None

    async def open(self) -> None:
        if self._webpush_configured:
            self.session = aiohttp.ClientSession()
            self.webpush = WebPushSender(self.settings, self.session)

    async def close(self) -> None:
        await self.http.aclose()
        if self.session is not None:
            await self.session.close()

    async def send(self, delivery: Delivery) -> Outcome:
        """Send on the delivery's channel; a channel this worker has no settings for fails (dead)."""
        sender = {"fcm": self.fcm, "webpush": self.webpush, "email": self.email}.get(delivery.channel)
        if sender is None:
            return Outcome("failed", f"channel {delivery.channel} is not configured on this worker")
        return await sender.send(delivery)
