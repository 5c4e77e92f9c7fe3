"""Daily check-ins and streaks: local days, freezes, rewards, milestones, time zones, DST, date line."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import acting_as, new_profile
from xpbase.db import Database
from xpbase.errors import DomainError


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def check_in(db: Database, pid: UUID, at: str | datetime) -> dict[str, Any]:
    return await db.rpc("service_role_check_in", profile_id=pid, at=utc(at) if isinstance(at, str) else at)


async def status(db: Database, pid: UUID, at: str) -> dict[str, Any]:
    return await db.rpc("service_role_streak_status", profile_id=pid, at=utc(at))


async def set_time_zone(db: Database, pid: UUID, tz: str) -> None:
    async with db.as_service() as conn:
        await conn.execute("update public.profiles set time_zone = $1 where id = $2", tz, pid)


async def daily(db: Database, pid: UUID, first: str, days: int) -> list[dict[str, Any]]:
    """Check in at noon UTC on `days` consecutive days from `first` (a date)."""
    start = date.fromisoformat(first)
    return [await check_in(db, pid, f"{start + timedelta(days=i)}T12:00:00Z") for i in range(days)]


async def test_day_seven_awards_35_xp_and_streak_grows_daily(db: Database) -> None:
    """Consecutive days grow the streak and award 5 XP x streak day (day 7 awards 35 XP)."""
    pid = await new_profile(db, "Ada")
    receipts = await daily(db, pid, "2026-03-01", 7)
    assert [r["streak"] for r in receipts] == [1, 2, 3, 4, 5, 6, 7]
    assert [r["granted"] for r in receipts] == [5, 10, 15, 20, 25, 30, 35]
    assert receipts[-1]["xp"]["activity"] == "daily_check_in"
    assert receipts[-1]["xp"]["idempotency_key"] == f"check_in:{pid}:2026-03-07"
    assert receipts[-1]["longest_streak"] == 7


async def test_second_check_in_on_the_same_local_day_changes_nothing(db: Database) -> None:
    """A second check-in on a local day answers checked_in false and grants nothing."""
    pid = await new_profile(db, "Ada")
    first = await check_in(db, pid, "2026-03-01T00:00:01Z")
    again = await check_in(db, pid, "2026-03-01T23:59:59Z")
    assert first["checked_in"] is True
    assert again["checked_in"] is False
    assert (again["streak"], again["granted"], again["xp"], again["done_today"]) == (1, 0, None, True)
    async with db.as_service() as conn:
        assert await conn.fetchval("select xp from public.profiles where id = $1", pid) == 5
        assert await conn.fetchval("select count(*) from public.check_ins where profile_id = $1", pid) == 1


async def test_reward_is_capped(db: Database) -> None:
    """The default rule caps the daily reward at 100 XP (day 20 and later)."""
    pid = await new_profile(db, "Ada")
    receipts = await daily(db, pid, "2026-01-01", 22)
    assert [r["granted"] for r in receipts[18:]] == [95, 100, 100, 100]


async def test_hub_bonus_rule_is_a_data_switch(db: Database) -> None:
    """Switching engine_settings.check_in_rule to hub_bonus gives 50 XP + 10 XP per streak day."""
    async with db.as_service() as conn:
        await conn.execute("update public.engine_settings set check_in_rule = 'hub_bonus'")
    pid = await new_profile(db, "Ada")
    receipts = await daily(db, pid, "2026-03-01", 3)
    assert [r["granted"] for r in receipts] == [60, 70, 80]


async def test_freeze_is_earned_every_seven_days_and_at_most_two_are_held(db: Database) -> None:
    """Days 7 and 14 each earn a freeze; day 21 earns none because two are held."""
    pid = await new_profile(db, "Ada")
    receipts = await daily(db, pid, "2026-01-01", 21)
    earned = {r["streak"]: r["freeze_earned"] for r in receipts if r["freeze_earned"]}
    assert earned == {7: True, 14: True}
    assert receipts[20]["freezes_held"] == 2
    assert receipts[20]["milestone"] == {"days": 21, "freeze_earned": False}


async def test_missed_day_consumes_a_freeze_and_keeps_without_growing_the_streak(db: Database) -> None:
    """A missed day uses a held freeze: the streak survives and the check-in adds only today."""
    pid = await new_profile(db, "Ada")
    await daily(db, pid, "2026-01-01", 7)  # streak 7, one freeze
    receipt = await check_in(db, pid, "2026-01-09T12:00:00Z")  # missed 2026-01-08
    assert (receipt["streak"], receipt["missed_days"], receipt["freezes_used"]) == (8, 1, 1)
    assert receipt["freezes_held"] == 0
    assert receipt["streak_restarted"] is False
    assert receipt["granted"] == 40


async def test_missed_days_beyond_the_freezes_restart_the_streak(db: Database) -> None:
    """Two missed days with one freeze: the freeze is spent on the first and the streak restarts at 1."""
    pid = await new_profile(db, "Ada")
    await daily(db, pid, "2026-01-01", 7)
    receipt = await check_in(db, pid, "2026-01-10T12:00:00Z")  # missed 8th and 9th
    assert (receipt["streak"], receipt["missed_days"], receipt["freezes_used"]) == (1, 2, 1)
    assert receipt["freezes_held"] == 0
    assert receipt["streak_restarted"] is True
    assert receipt["longest_streak"] == 7
    assert receipt["granted"] == 5


async def test_status_shows_what_a_check_in_now_would_find(db: Database) -> None:
    """streak_status reports the streak alive on freezes, or broken, before the member checks in."""
    pid = await new_profile(db, "Ada")
    await daily(db, pid, "2026-01-01", 7)
    alive = await status(db, pid, "2026-01-09T08:00:00Z")
    assert (alive["current_streak"], alive["freezes_held"], alive["missed_days"], alive["done_today"]) == (
        7,
        0,
        1,
        False,
    )
    assert alive["next_check_in_xp"] == 40
    broken = await status(db, pid, "2026-01-10T08:00:00Z")
    assert (broken["current_streak"], broken["freezes_held"], broken["longest_streak"]) == (0, 0, 7)
    assert broken["next_check_in_xp"] == 5
    done = await status(db, pid, "2026-01-07T20:00:00Z")
    assert done["done_today"] is True
    assert done["day_ends_at"] == "2026-01-08T00:00:00.000000Z"
    assert done["next_check_in_at"] == "2026-01-08T00:00:00.000000Z"


async def test_milestones_send_notifications(db: Database) -> None:
    """Streak days 3 and 7 send streak_milestone notifications; day 7's says a freeze was earned."""
    pid = await new_profile(db, "Ada")
    await daily(db, pid, "2026-01-01", 7)
    async with db.as_service() as conn:
        rows = await conn.fetch(
            "select data from public.notifications"
            " where profile_id = $1 and kind = 'streak_milestone' order by id",
            pid,
        )
    assert [(r["data"]["days"], r["data"]["freeze_earned"]) for r in rows] == [(3, False), (7, True)]


async def test_local_day_follows_the_profile_time_zone(db: Database) -> None:
    """Two check-ins 2 hours apart on one UTC day are two local days in Pacific/Kiritimati (UTC+14)."""
    pid = await new_profile(db, "Kiri")
    await set_time_zone(db, pid, "Pacific/Kiritimati")
    first = await check_in(db, pid, "2026-03-01T09:00:00Z")  # 23:00 local, 2026-03-01
    second = await check_in(db, pid, "2026-03-01T11:00:00Z")  # 01:00 local, 2026-03-02
    assert (first["local_date"], second["local_date"]) == ("2026-03-01", "2026-03-02")
    assert second["streak"] == 2
    assert first["day_ends_at"] == "2026-03-01T10:00:00.000000Z"


async def test_dst_days_end_at_local_midnight(db: Database) -> None:
    """On New York's 23-hour and 25-hour days the local day still ends at local midnight."""
    pid = await new_profile(db, "Nova")
    await set_time_zone(db, pid, "America/New_York")
    spring = await status(db, pid, "2026-03-08T12:00:00Z")
    assert spring["local_date"] == "2026-03-08"
    assert spring["day_ends_at"] == "2026-03-09T04:00:00.000000Z"
    fall = await status(db, pid, "2026-11-01T12:00:00Z")
    assert fall["day_ends_at"] == "2026-11-02T05:00:00.000000Z"
    late = await check_in(db, pid, "2026-03-09T03:30:00Z")  # 23:30 EDT on the 8th
    assert late["local_date"] == "2026-03-08"


async def test_midnight_dst_change_starts_the_day_at_one(db: Database) -> None:
    """In America/Santiago clocks jump from 00:00 to 01:00: the day starts at the first existing moment."""
    pid = await new_profile(db, "Santi")
    await set_time_zone(db, pid, "America/Santiago")
    before = await status(db, pid, "2026-09-05T20:00:00Z")
    assert before["day_ends_at"] == "2026-09-06T04:00:00.000000Z"
    assert (
        datetime.fromisoformat("2026-09-06T04:00:00+00:00").astimezone(ZoneInfo("America/Santiago")).hour == 1
    )


async def test_a_date_skipped_by_the_date_line_is_not_a_missed_day(db: Database) -> None:
    """Samoa skipped 2011-12-30 crossing the date line: checking in on the 29th and 31st keeps the streak."""
    pid = await new_profile(db, "Sina")
    await set_time_zone(db, pid, "Pacific/Apia")
    first = await check_in(db, pid, "2011-12-29T22:00:00Z")  # noon on the 29th (UTC-10)
    assert first["local_date"] == "2011-12-29"
    assert first["day_ends_at"] == "2011-12-30T10:00:00.000000Z"  # straight into the 31st (UTC+14)
    second = await check_in(db, pid, "2011-12-30T22:00:00Z")  # noon on the 31st
    assert second["local_date"] == "2011-12-31"
    assert (second["streak"], second["missed_days"], second["freezes_used"]) == (2, 0, 0)


async def test_moving_the_time_zone_back_does_not_allow_a_second_check_in(db: Database) -> None:
    """After checking in on the 2nd at UTC+14, moving to UTC-11 (local date the 1st) counts as done."""
    pid = await new_profile(db, "Drift")
    await set_time_zone(db, pid, "Pacific/Kiritimati")
    await check_in(db, pid, "2026-03-01T12:00:00Z")  # 02:00 on the 2nd
    await set_time_zone(db, pid, "Pacific/Pago_Pago")
    again = await check_in(db, pid, "2026-03-01T13:00:00Z")  # 02:00 on the 1st
    assert again["checked_in"] is False
    assert again["done_today"] is True
    assert (
        again["next_check_in_at"] == "2026-03-03T11:00:00.000000Z"
    )  # midnight starting the 3rd in Pago Pago


async def test_concurrent_check_ins_count_once(db: Database) -> None:
    """Bot and web checking in at the same moment: one check-in, one award."""
    pid = await new_profile(db, "Ada")
    results = await asyncio.gather(*(check_in(db, pid, "2026-03-01T12:00:00Z") for _ in range(5)))
    assert sorted(r["checked_in"] for r in results) == [False, False, False, False, True]
    async with db.as_service() as conn:
        assert await conn.fetchval("select xp from public.profiles where id = $1", pid) == 5


async def test_member_checks_in_for_themself_and_reads_only_their_own_streak(db: Database) -> None:
    """public.check_in and streak_status act on the caller; streak rows are private to their owner."""
    ada = await new_profile(db, "Ada")
    bob = await new_profile(db, "Bob")
    first = await db.rpc("check_in", role="authenticated", claims={"role": "authenticated", "sub": str(ada)})
    assert first["checked_in"] is True
    assert first["profile_id"] == str(ada)
    mine = await db.rpc(
        "streak_status", role="authenticated", claims={"role": "authenticated", "sub": str(ada)}
    )
    assert mine["current_streak"] == 1
    await check_in(db, bob, datetime.now(UTC))
    async with acting_as(db, "authenticated", ada) as conn:
        rows = await conn.fetch("select profile_id from public.streaks")
        assert [r["profile_id"] for r in rows] == [ada]
        assert await conn.fetchval("select count(*) from public.check_ins") == 1
    async with acting_as(db, "anon") as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("select * from public.streaks")


async def test_check_in_refuses_anon_and_members_calling_the_service_variant(db: Database) -> None:
    """anon cannot check in; members cannot call service_role_check_in for anyone."""
    ada = await new_profile(db, "Ada")
    async with acting_as(db, "anon") as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetchval("select public.check_in()")
    async with acting_as(db, "authenticated", ada) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetchval("select public.service_role_check_in($1)", ada)
    async with acting_as(db, "authenticated", ada) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("update public.streaks set freezes_held = 2")


async def test_unknown_profile_is_refused(db: Database) -> None:
    """A check-in for a profile that does not exist is XPPRF and changes nothing."""
    with pytest.raises(DomainError) as info:
        await check_in(db, UUID(int=7), "2026-03-01T12:00:00Z")
    assert info.value.code == "unknown_profile"


# ---------------------------------------------------------------------------
# Property: the SQL agrees with a model of the rules in any time zone
# ---------------------------------------------------------------------------

ZONES = [
    "UTC",
    "America/New_York",
    "Europe/London",
    "Europe/Berlin",
    "America/Santiago",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
    "America/St_Johns",
    "Pacific/Apia",
]


@dataclass
class StreakModel:
    """The rules of the default check-in rule, written out in Python."""

    last: date | None = None
    streak: int = 0
    longest: int = 0
    freezes: int = 0

    def check_in(self, day: date, skipped: int) -> dict[str, Any]:
        if self.last is not None and day <= self.last:
            return {"checked_in": False, "streak": self.streak, "freezes_held": self.freezes}
        missed = 0 if self.last is None else (day - self.last).days - 1 - skipped
        used = min(missed, self.freezes)
        self.freezes -= used
        self.streak = 1 if self.last is None or missed > used else self.streak + 1
        earned = self.streak % 7 == 0 and self.freezes < 2
        self.freezes += earned
        self.longest = max(self.longest, self.streak)
        self.last = day
        return {
            "checked_in": True,
            "streak": self.streak,
            "freezes_held": self.freezes,
            "freezes_used": used,
            "freeze_earned": earned,
            "granted": min(5 * self.streak, 100),
            "longest_streak": self.longest,
        }


def skipped_dates(zone: ZoneInfo, start: date, end: date) -> int:
    """Local dates strictly between start and end that never happened in the zone."""
    seen = set()
    moment = datetime.combine(start, datetime.min.time(), zone).astimezone(UTC)
    stop = datetime.combine(end, datetime.min.time(), zone).astimezone(UTC) + timedelta(days=1)
    while moment < stop:
        seen.add(moment.astimezone(zone).date())
        moment += timedelta(minutes=30)
    between = [start + timedelta(days=i) for i in range(1, (end - start).days)]
    return sum(1 for d in between if d not in seen)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    zone=st.sampled_from(ZONES),
    start=st.datetimes(min_value=datetime(2011, 12, 20), max_value=datetime(2026, 6, 30)),
    steps=st.lists(st.floats(min_value=0.5, max_value=80.0), min_size=1, max_size=16),
)
async def test_check_ins_match_the_model_in_any_time_zone(
    db: Database, zone: str, start: datetime, steps: list[float]
) -> None:
    """Property: for check-ins hours apart in any zone, SQL and the Python model agree on every receipt."""
    tz = ZoneInfo(zone)
    model = StreakModel()
    moment = start.replace(tzinfo=UTC)
    async with acting_as(db, "service_role") as conn:
        pid = await conn.fetchval("select public.ensure_profile('test', gen_random_uuid()::text, 'Prop')")
        await conn.execute("update public.profiles set time_zone = $1 where id = $2", zone, pid)
        for hours in steps:
            moment += timedelta(hours=hours)
            receipt = json.loads(
                await conn.fetchval("select public.service_role_check_in($1, $2)::text", pid, moment)
            )
            local = moment.astimezone(tz).date()
            assert receipt["local_date"] == local.isoformat()
            skipped = skipped_dates(tz, model.last, local) if model.last and local > model.last else 0
            expected = model.check_in(local, skipped)
            assert {k: receipt[k] for k in expected} == expected
            ends = utc(receipt["day_ends_at"])
            assert ends > moment
            assert ends.astimezone(tz).date() > local
            assert (ends - timedelta(microseconds=1)).astimezone(tz).date() == local
