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


class HiddenBoard(Result):
    """One board a member leaves: ``scope`` is "" for all_time, the layer slug for layer and season (every
    season board of that layer), the Discord guild id for server."""

    board: Literal["all_time", "layer", "season", "server"]
    scope: str


class LeaderboardVisibility(Result):
    """my_leaderboard_visibility / set_leaderboard_visibility (supabase/sql/61_leaderboard_visibility.sql):
    ``visible`` false leaves every board; ``hidden_boards`` are the boards left one by one."""

    visible: bool
    hidden_boards: list[HiddenBoard]


RESULTS = {
    "my_leaderboard_visibility": LeaderboardVisibility,
    "set_leaderboard_visibility": LeaderboardVisibility,
    "my_notification_preferences": NotificationPreferences,
    "set_notification_preferences": NotificationPreferences,
    "register_push_device": PushDevice,
}
