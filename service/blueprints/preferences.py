"""The caller's notification preferences, leaderboard visibility and push devices (issue 13 item 3, issue 14).

The rules (which kinds and channels exist, time formats, device limits) are in
SQL (supabase/sql/76_preferences.sql, leaderboard visibility in 61_leaderboard_visibility.sql);
these routes call those functions as the caller, so the answers and refusals are the database's.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, StrictBool
from quart import Blueprint, g
from quart_schema import security_scheme, tag_blueprint, validate_request, validate_response

from service.lib.access import require_member
from service.lib.context import get_rpc
from service.lib.openapi import BEARER, errors
from xpbase.models.preferences import (
    Channel,
    HiddenBoard,
    LeaderboardVisibility,
    NotificationPreferences,
    PushDevice,
)

blueprint = Blueprint("preferences", __name__)
tag_blueprint(blueprint, ["notifications"])


HH_MM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
"""A local time of day, ``HH:MM`` (00:00 to 23:59)."""


class PreferencesIn(BaseModel):
    """New preferences: channels per kind (kinds left out keep theirs; [] opts out), quiet hours (local)."""

    channels: dict[str, list[Channel]] = Field(default_factory=dict)
    quiet_hours_start: str | None = Field(default=None, pattern=HH_MM, description='Local "HH:MM", or null.')
    quiet_hours_end: str | None = Field(default=None, pattern=HH_MM, description='Local "HH:MM", or null.')
    streak_reminder_at: str | None = Field(default=None, pattern=HH_MM, description='"HH:MM"; null keeps.')


class HiddenBoardIn(BaseModel):
    """A board to leave: ``scope`` "" for all_time, a layer slug for layer and season, a guild id for
    server."""

    board: Literal["all_time", "layer", "season", "server"]
    scope: str = Field(default="", max_length=64)


class LeaderboardVisibilityIn(BaseModel):
    """``visible`` (null keeps it; false leaves every board) and ``hidden_boards`` (null keeps them; else the
    whole list of boards left one by one, at most 100)."""

    visible: StrictBool | None = None
    hidden_boards: list[HiddenBoardIn] | None = Field(default=None, max_length=100)


class DeviceIn(BaseModel):
    """A device: an FCM registration token, or a Web Push subscription (endpoint and keys)."""

    platform: Literal["fcm", "webpush"]
    token: str = Field(min_length=1, max_length=4096, description="FCM token, or the Web Push endpoint URL.")
    p256dh: str | None = Field(default=None, max_length=200, description="Web Push: the subscription's key.")
    auth: str | None = Field(default=None, max_length=64, description="Web Push: the subscription's secret.")


@blueprint.get("/v1/me/preferences")
@security_scheme(BEARER)
@require_member
@validate_response(NotificationPreferences, 200)
@errors(401, 403)
async def get_preferences() -> NotificationPreferences:
    """The signed-in member's notification preferences.

    ``channels``: for every notification kind, the channels it goes to
    (in_app, discord_dm, email, push): the member's choice or the kind's
    default. Quiet hours and the streak reminder time are local ``HH:MM`` in
    ``time_zone`` (the profile's). 401 without a valid token.
    """
    preferences: NotificationPreferences = await get_rpc().call(
        "my_notification_preferences", role="authenticated", claims=g.claims
    )
    return preferences


@blueprint.put("/v1/me/preferences")
@security_scheme(BEARER)
@require_member
@validate_request(PreferencesIn)
@validate_response(NotificationPreferences, 200)
@errors(400, 401, 403)
async def put_preferences(data: PreferencesIn) -> NotificationPreferences:
    """Change the signed-in member's notification preferences; answers them as GET does.

    Kinds named in ``channels`` get exactly that list ([] opts out of the
    kind); quiet hours are set or cleared as a pair (start after end spans
    midnight): deliveries due then wait until they end. 400
    ``invalid_argument`` for an unknown kind or channel or a bad time; 401.
    """
    preferences: NotificationPreferences = await get_rpc().call(
        "set_notification_preferences",
        role="authenticated",
        claims=g.claims,
        channels=data.channels,
        quiet_hours_start=data.quiet_hours_start,
        quiet_hours_end=data.quiet_hours_end,
        streak_reminder_at=data.streak_reminder_at,
    )
    return preferences


@blueprint.get("/v1/me/preferences/leaderboards")
@security_scheme(BEARER)
@require_member
@validate_response(LeaderboardVisibility, 200)
@errors(401, 403)
async def get_leaderboard_visibility() -> LeaderboardVisibility:
    """The signed-in member's leaderboard visibility.

    Calls `public.my_leaderboard_visibility`: ``visible`` (false: off every
    board) and ``hidden_boards``, the boards left one by one ({board, scope}).
    401 without a valid token.
    """
    visibility: LeaderboardVisibility = await get_rpc().call(
        "my_leaderboard_visibility", role="authenticated", claims=g.claims
    )
    return visibility


@blueprint.put("/v1/me/preferences/leaderboards")
@security_scheme(BEARER)
@require_member
@validate_request(LeaderboardVisibilityIn)
@validate_response(LeaderboardVisibility, 200)
@errors(400, 401, 403)
async def put_leaderboard_visibility(data: LeaderboardVisibilityIn) -> LeaderboardVisibility:
    """Change which leaderboards the signed-in member shows on; answers as GET does.

    Calls `public.set_leaderboard_visibility` as the caller (the policies let
    a member write only their own rows). Boards: all_time, layer (scope: the
    layer), season (scope: the layer; every season board of it), server
    (scope: the Discord guild id). 400 ``invalid_argument`` for an unknown
    layer or a bad scope; 401.
    """
    visibility: LeaderboardVisibility = await get_rpc().call(
        "set_leaderboard_visibility",
        role="authenticated",
        claims=g.claims,
        visible=data.visible,
        hidden_boards=None
        if data.hidden_boards is None
        else [HiddenBoard(board=b.board, scope=b.scope).model_dump() for b in data.hidden_boards],
    )
    return visibility


@blueprint.post("/v1/me/devices")
@security_scheme(BEARER)
@require_member
@validate_request(DeviceIn)
@validate_response(PushDevice, 201)
@errors(400, 401, 403)
async def post_device(data: DeviceIn) -> tuple[PushDevice, int]:
    """Register a device of the signed-in member for push notifications.

    ``fcm``: ``token`` is the app's FCM registration token. ``webpush``:
    ``token`` is the subscription's endpoint (https) with its ``p256dh`` and
    ``auth`` keys (base64url). Registering a known token again refreshes it.
    At most 20 devices per member. A token FCM reports unregistered is
    removed by the delivery worker. 400 ``invalid_argument``; 401.
    """
    device: PushDevice = await get_rpc().call(
        "register_push_device",
        role="authenticated",
        claims=g.claims,
        platform=data.platform,
        token=data.token,
        p256dh=data.p256dh,
        auth=data.auth,
    )
    return device, 201
