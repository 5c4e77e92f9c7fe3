"""Results of the preference and device functions (supabase/sql/76_preferences.sql)."""

from __future__ import annotations

from typing import Literal

from xpbase.models import Result

Channel = Literal["in_app", "discord_dm", "email", "push"]


class NotificationPreferences(Result):
    """my_notification_preferences / set_notification_preferences: channels per kind, quiet hours (local)."""

    channels: dict[str, list[Channel]]
    quiet_hours_start: str | None
    quiet_hours_end: str | None
    streak_reminder_at: str
    time_zone: str


class PushDevice(Result):
    """register_push_device: the device as stored."""

    id: int
    platform: Literal["fcm", "webpush"]
    created_at: str
    last_seen_at: str


RESULTS = {
    "my_notification_preferences": NotificationPreferences,
    "set_notification_preferences": NotificationPreferences,
    "register_push_device": PushDevice,
}
