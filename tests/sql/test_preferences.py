"""Notification preferences and push devices (supabase/sql/76_preferences.sql)."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from tests.helpers import acting_as, new_profile
from xpbase.db import Database
from xpbase.errors import DomainError


async def test_defaults_come_from_the_kinds_table(db: Database) -> None:
    """A member who chose nothing gets each kind's default channels, no quiet hours, a 20:00 reminder."""
    ada = await new_profile(db, "Ada")
    async with acting_as(db, "authenticated", ada) as conn:
        prefs = await conn.fetchval("select public.my_notification_preferences()")
    assert prefs["channels"]["level_up"] == ["in_app", "discord_dm", "push"]
    assert prefs["channels"]["season_result"] == ["in_app", "discord_dm", "email", "push"]
    assert (prefs["quiet_hours_start"], prefs["quiet_hours_end"]) == (None, None)
    assert (prefs["streak_reminder_at"], prefs["time_zone"]) == ("20:00", "UTC")


async def test_a_member_sets_channels_per_kind_and_quiet_hours(db: Database) -> None:
    """Named kinds are replaced (deduplicated, in channel order), others keep their setting."""
    ada = await new_profile(db, "Ada")
    async with db.as_member(ada) as conn:
        prefs = await conn.fetchval(
            "select public.set_notification_preferences($1::jsonb, '22:30', '07:00', '19:00')",
            {"level_up": ["push", "email", "push"], "tier_up": []},
        )
    assert prefs["channels"]["level_up"] == ["email", "push"]
    assert prefs["channels"]["tier_up"] == []
    assert prefs["channels"]["season_result"] == ["in_app", "discord_dm", "email", "push"]
    assert (prefs["quiet_hours_start"], prefs["quiet_hours_end"], prefs["streak_reminder_at"]) == (
        "22:30",
        "07:00",
        "19:00",
    )
    async with db.as_member(ada) as conn:
        again = await conn.fetchval(
            "select public.set_notification_preferences($1::jsonb)", {"tier_up": ["in_app"]}
        )
    assert again["channels"]["level_up"] == ["email", "push"]
    assert again["channels"]["tier_up"] == ["in_app"]
    assert again["quiet_hours_start"] is None  # quiet hours are set (or cleared) as a pair each time
    assert again["streak_reminder_at"] == "19:00"


BAD_PREFERENCES = [
    ({"level_up": ["sms"]}, None, None),
    ({"no_such_kind": ["push"]}, None, None),
    ({"level_up": "push"}, None, None),
    ({"level_up": [1]}, None, None),
    ({}, "22:00", None),
    ({}, "25:00", "07:00"),
    ({}, "7:00", "08:00"),
    ({}, "22:00'; drop table x; --", "07:00"),
]


async def test_bad_preferences_are_refused_and_change_nothing(db: Database) -> None:
    """Unknown kinds or channels and malformed times raise XPBAD; nothing is stored."""
    ada = await new_profile(db, "Ada")
    for channels, start, end in BAD_PREFERENCES:
        with pytest.raises(DomainError) as caught:
            async with db.as_member(ada) as conn:
                await conn.fetchval(
                    "select public.set_notification_preferences($1::jsonb, $2, $3)", channels, start, end
                )
        assert caught.value.error.sqlstate == "XPBAD", (channels, start, end)
    async with db.as_service() as conn:
        assert await conn.fetchval("select count(*) from public.notification_preferences") == 0


async def test_quiet_hours_end_in_the_members_time_zone(db: Database) -> None:
    """22:00-07:00 in Asia/Kolkata: 23:00 local waits until 07:00 local the next day; 12:00 does not wait."""
    ada = await new_profile(db, "Ada")
    async with db.as_service() as conn:
        await conn.execute("update public.profiles set time_zone = 'Asia/Kolkata' where id = $1", ada)
    async with db.as_member(ada) as conn:
        await conn.fetchval("select public.set_notification_preferences('{}'::jsonb, '22:00', '07:00')")
    async with db.pool.acquire() as conn:
        # 17:30 UTC = 23:00 IST; quiet until 07:00 IST = 01:30 UTC next day.
        late = await conn.fetchval(
            "select private.quiet_hours_end($1, $2)", ada, datetime(2026, 3, 1, 17, 30, tzinfo=UTC)
        )
        early = await conn.fetchval(
            "select private.quiet_hours_end($1, $2)", ada, datetime(2026, 3, 1, 20, 0, tzinfo=UTC)
        )
        noon = await conn.fetchval(
            "select private.quiet_hours_end($1, $2)", ada, datetime(2026, 3, 1, 6, 30, tzinfo=UTC)
        )
    assert late == datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
    assert early == datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
    assert noon is None


async def test_devices_are_registered_per_member_under_rls(db: Database) -> None:
    """A member registers FCM and Web Push devices, sees only their own, and may remove them."""
    ada, bob = await new_profile(db, "Ada"), await new_profile(db, "Bob")
    keys = ("B" + "A" * 86, "c" * 22)
    async with db.as_member(ada) as conn:
        await conn.fetchval("select public.register_push_device('fcm', 'tok-ada')")
        await conn.fetchval(
            "select public.register_push_device('webpush', 'https://push.example/ep/1', $1, $2)", *keys
        )
    async with acting_as(db, "authenticated", bob) as conn:
        assert await conn.fetchval("select count(*) from public.push_devices") == 0
        assert (await conn.execute("delete from public.push_devices")) == "DELETE 0"
    async with acting_as(db, "authenticated", ada) as conn:
        assert await conn.fetchval("select count(*) from public.push_devices") == 2
        assert (await conn.execute("delete from public.push_devices where platform = 'fcm'")) == "DELETE 1"
    async with acting_as(db, "anon") as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetchval("select public.register_push_device('fcm', 'x')")


BAD_DEVICES = [
    ("sms", "t", None, None),
    ("fcm", "", None, None),
    ("fcm", "has space", None, None),
    ("fcm", "t", "B" + "A" * 86, "c" * 22),
    ("webpush", "https://push.example/ep", None, None),
    ("webpush", "http://evil.example/ep", "B" + "A" * 86, "c" * 22),
    ("webpush", "https://push.example/ep", "short", "c" * 22),
]


async def test_bad_devices_are_refused(db: Database) -> None:
    """Unknown platforms, empty or spaced tokens, Web Push without keys or over plain http: XPBAD."""
    ada = await new_profile(db, "Ada")
    for platform, token, p256dh, auth in BAD_DEVICES:
        with pytest.raises(DomainError) as caught:
            async with db.as_member(ada) as conn:
                await conn.fetchval(
                    "select public.register_push_device($1, $2, $3, $4)", platform, token, p256dh, auth
                )
        assert caught.value.error.sqlstate == "XPBAD", (platform, token)
    async with db.as_service() as conn:
        assert await conn.fetchval("select count(*) from public.push_devices") == 0
