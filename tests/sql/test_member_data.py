"""A member's data out and erased (supabase/sql/94_member_data.sql): the export holds what is kept about
them; erasure leaves every ledger sum intact and no personal field readable."""

from __future__ import annotations

import pytest

from tests.helpers import acting_as, award, new_profile
from xpbase.db import Database, member_claims
from xpbase.errors import DomainError

SUMS = """
select (select coalesce(sum(amount), 0) from public.xp_ledger where profile_id = $1) as ledger,
       (select xp from public.profiles where id = $1) as xp,
       (select coalesce(sum(xp), 0) from public.profile_layers where profile_id = $1) as layers,
       (select coalesce(sum(season_amount), 0) from public.xp_ledger where profile_id = $1) as season_ledger,
       (select coalesce(sum(xp), 0) from public.season_scores where profile_id = $1) as seasons,
       (select points from public.profiles where id = $1) as points,
       (select coalesce(sum(amount), 0) from public.points_ledger where profile_id = $1) as points_ledger
"""


async def _world(db: Database):
    pid = await new_profile(db, "Ada Lovelace", subject="9001")
    await award(db, pid, "challenge_completed", "c1", amount=700)
    await award(db, pid, "event_attendance", "e1")
    await db.rpc(
        "service_role_discord_see_members", guild_id="1", members=[{"user_id": "9001", "display_name": "Ada"}]
    )
    await db.rpc("post_chat_message", role="authenticated", claims=member_claims(pid), body="my secret plans")
    async with db.as_member(pid) as conn:
        await conn.execute(
            "update public.profiles set bio = 'I write programs', avatar_url = 'https://example.com/a.png',"
            " social_links = '{\"x\": \"https://x.com/ada\"}', time_zone = 'Europe/London' where id = $1",
            pid,
        )
    async with db.pool.acquire() as conn:
        await conn.execute(
            "insert into public.push_devices (profile_id, platform, token) values ($1, 'fcm', 'tok')", pid
        )
        await conn.execute(
            "insert into private.auth_sessions (profile_id, provider) values ($1, 'discord')", pid
        )
    return pid


async def test_export_holds_profile_identities_ledger_and_messages(db: Database) -> None:
    pid = await _world(db)
    export = await db.rpc("my_export", role="authenticated", claims=member_claims(pid))
    assert export["profile"]["bio"] == "I write programs"
    assert [(i["provider"], i["subject"]) for i in export["identities"]] == [("discord", "9001")]
    assert sum(r["amount"] for r in export["ledger"]) == export["profile"]["xp"] == 750
    assert export["servers"] == ["1"] and export["chat_messages"][0]["body"] == "my secret plans"
    with pytest.raises(DomainError):
        await db.rpc("my_export", role="anon")


async def test_erasure_keeps_every_sum_and_leaves_nothing_personal(db: Database) -> None:
    pid = await _world(db)
    async with acting_as(db, "service_role") as conn:
        before = dict(await conn.fetchrow(SUMS, pid))
        kinds = await conn.fetch("select kind from public.notifications where profile_id = $1", pid)
    # level 2, layer status, and the default badge First steps
    assert sorted(k["kind"] for k in kinds) == ["badge_awarded", "layer_status_up", "level_up"]
    erased = await db.rpc("erase_me", role="authenticated", claims=member_claims(pid))
    assert erased["erased"] is True
    assert erased["removed"] == {
        "identities": 1,
        "sessions": 1,
        "push_devices": 1,
        "notifications": 3,
        "chat_messages": 1,
    }
    async with db.pool.acquire() as conn:
        after = dict(await conn.fetchrow(SUMS, pid))
        profile = await conn.fetchrow("select * from public.profiles where id = $1", pid)
        left = {
            table: await conn.fetchval(f"select count(*) from {table} where profile_id = $1", pid)
            for table in (
                "public.identities",
                "private.auth_sessions",
                "public.push_devices",
                "public.notifications",
                "public.discord_guild_members",
            )
        }
        chat = await conn.fetchrow(
            "select author_name, body from public.chat_messages where profile_id = $1", pid
        )
    assert after == before and after["ledger"] == after["xp"] == after["layers"] == 750
    assert (
        profile["display_name"],
        profile["bio"],
        profile["avatar_url"],
        dict(profile["social_links"])
        if isinstance(profile["social_links"], dict)
        else profile["social_links"],
    ) in (
        ("Deleted member", "", None, {}),
        ("Deleted member", "", None, "{}"),
    )
    assert (profile["time_zone"], profile["leaderboard_visible"]) == ("UTC", False)
    assert set(left.values()) == {0}
    assert tuple(chat) == ("Deleted member", "[erased]")
    # The Discord account is free again: seen anew, it gets a new profile.
    again = await db.rpc("ensure_profile", provider="discord", subject="9001", display_name="Ada")
    assert str(again) != str(pid)
    # A second erasure changes nothing; a plain member may not erase someone else; an admin may.
    assert (await db.rpc("admin_erase_profile", profile_id=pid))["erased"] is False
    other = await new_profile(db, "Other")
    with pytest.raises(DomainError) as refused:
        await db.rpc(
            "admin_erase_profile", role="authenticated", claims=member_claims(other), profile_id=again
        )
    assert refused.value.error.sqlstate == "42501"
