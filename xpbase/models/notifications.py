"""A member's notifications: pages and marking read (supabase/sql/75_notifications_chat.sql)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from xpbase.models import Result


class Notification(Result):
    """A message to one member (level_up, tier_up, season_result, ...); ``read_at`` is null while unread."""

    id: int
    kind: str
    title: str
    body: str
    data: dict[str, Any]
    created_at: datetime
    read_at: datetime | None


class NotificationPage(Result):
    """A page of notifications, newest first; ``unread`` counts all unread ones."""

    items: list[Notification]
    next_cursor: str | None
    unread: int


class MarkedRead(Result):
    """How many notifications this call marked read, and how many stay unread."""

    marked: int
    unread: int


RESULTS = {"list_notifications": NotificationPage, "mark_notifications_read": MarkedRead}
