"""Results of the outbox functions (supabase/sql/77_outbox.sql)."""

from __future__ import annotations

from typing import Any, Literal

from xpbase.models import Result


class Delivery(Result):
    """One delivery to send: service_role_claim_delivery's ``delivery``, and the Discord claim's items."""

    id: int
    channel: Literal["fcm", "webpush", "email", "discord_dm"]
    target: str
    kind: str
    attempts: int
    collapsed: int
    notification_id: int
    title: str
    body: str
    data: dict[str, Any]
    created_at: str
    display_name: str
    p256dh: str | None
    auth: str | None
    idempotency_key: str


class Claim(Result):
    """service_role_claim_delivery: ``claimed`` with the delivery, or why there is nothing to send now."""

    status: Literal["claimed", "later", "busy", "done", "gone"]
    delivery: Delivery | None = None
    next_attempt_at: str | None = None
    state: str | None = None


class Finished(Result):
    """service_role_finish_delivery: the state after the attempt (changed: false if already finished)."""

    id: int
    state: Literal["pending", "sending", "sent", "dead", "dropped"]
    attempts: int
    next_attempt_at: str | None
    changed: bool


class DiscordClaim(Result):
    """service_role_claim_discord_deliveries: the Discord DMs the bot now holds."""

    deliveries: list[Delivery]


class DeadDelivery(Result):
    """One item of dead_deliveries (the target is not shown)."""

    id: int
    notification_id: int
    profile_id: str
    kind: str
    channel: str
    attempts: int
    last_error: str | None
    created_at: str
    updated_at: str


class Purged(Result):
    """service_role_purge_old_messages: rows deleted."""

    chat_messages: int
    notifications: int
    deliveries: int


RESULTS = {
    "service_role_claim_delivery": Claim,
    "service_role_finish_delivery": Finished,
    "service_role_claim_discord_deliveries": DiscordClaim,
    "service_role_purge_old_messages": Purged,
    "dead_deliveries": DeadDelivery,
}
