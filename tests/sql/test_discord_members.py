"""The Discord bot's member-side RPCs: passive XP (no-XP channels and roles), reward-role plans and the
notifications the bot announces."""

from __future__ import annotations

import pytest

from tests.helpers import acting_as, award, new_profile
from xpbase.db import Database
from xpbase.errors import DomainError
from xpbase.models.discord_level_ups import LevelUpClaim


async def test_no_xp_award_writes_nothing_and_makes_no_profile(db: Database) -> None:
    """An award in a no-XP channel, or for a member with a no-XP role, is skipped before the engine."""
    await db.rpc("service_role_discord_set_no_xp", guild_id="1", kind="channel", target_id="5", no_xp=True)
    await db.rpc("service_role_discord_set_no_xp", guild_id="1", kind="role", target_id="6", no_xp=True)
    by_channel = await db.rpc(
        "service_role_discord_award",
        guild_id="1",
        user_id="9",
        display_name="N",
        activity="message",
        idempotency_key="m1",
        channel_id="5",
        role_ids=[],
    )
    by_role = await db.rpc(
        "service_role_discord_award",
        guild_id="1",
        user_id="9",
        display_name="N",
        activity="message",
        idempotency_key="m2",
        channel_id="7",
        role_ids=["8", "6"],
    )
    assert (by_channel["skipped"], by_role["skipped"]) == ("no_xp_channel", "no_xp_role")
    assert by_channel["granted"] == by_role["granted"] == 0
    async with acting_as(db, "service_role") as conn:
        assert await conn.fetchval("select count(*) from public.xp_ledger") == 0
        assert await conn.fetchval("select count(*) from public.identities") == 0


async def test_role_plan_stacks_level_and_tier_rewards(db: Database) -> None:
    """A member holds every reward whose level (or tier's first level) they reached, none of the others."""
    await db.rpc("service_role_discord_set_role_reward", guild_id="1", role_id="20", min_level=2)
    await db.rpc("service_role_discord_set_role_reward", guild_id="1", role_id="21", min_level=5)
    await db.rpc("service_role_discord_set_role_reward", guild_id="1", role_id="22", tier="member")
    pid = await db.rpc("ensure_profile", provider="discord", subject="30", display_name="A")
    await award(db, pid, "challenge_completed", "c", amount=1000)  # 1000 XP: level 3
    plan = await db.rpc("service_role_discord_role_plan", guild_id="1", user_ids=["30", "31"])
    assert plan["managed"] == ["20", "21", "22"]
    members = {m["user_id"]: m for m in plan["members"]}
    assert members["30"]["level"] == 3 and members["30"]["roles"] == ["20"]
    assert members["31"]["profile_id"] is None and members["31"]["roles"] == []
    await db.rpc("admin_set_level", profile_id=pid, level=11, reason="test")
    plan = await db.rpc("service_role_discord_role_plan", guild_id="1", user_ids=["30"])
    assert plan["members"][0]["roles"] == ["20", "21", "22"]


async def test_notifications_cursor_moves_past_everything_read(db: Database) -> None:
    """The cursor starts at the newest notification, returns only Discord members' level/tier-ups after it."""
    start = await db.rpc("service_role_discord_notifications")
    assert start == {"cursor": 0, "notifications": []}
    on_discord = await db.rpc("ensure_profile", provider="discord", subject="40", display_name="D")
    elsewhere = await new_profile(db, "W", provider="github")
    await award(db, on_discord, "challenge_completed", "a", amount=200)
    await award(db, elsewhere, "challenge_completed", "b", amount=200)
    batch = await db.rpc("service_role_discord_notifications", after_id=0, max_rows=100)
    assert [(n["user_id"], n["kind"], n["idempotency_key"]) for n in batch["notifications"]] == [
        ("40", "level_up", "a")
    ]
    again = await db.rpc("service_role_discord_notifications", after_id=batch["cursor"], max_rows=100)
    assert again == {"cursor": batch["cursor"], "notifications": []}


async def test_hidden_member_is_private_to_other_viewers(db: Database) -> None:
    """Hidden from boards: XPHID for another viewer; the member and the backend see everything."""
    await db.rpc(
        "service_role_discord_award",
        guild_id="1",
        user_id="21",
        display_name="Hidden",
        activity="message",
        idempotency_key="h1",
    )
    async with db.as_service() as conn:
        await conn.execute(
            "update public.profiles p set leaderboard_visible = false from public.identities i"
            " where i.profile_id = p.id and i.provider = 'discord' and i.subject = '21'"
        )
    with pytest.raises(DomainError) as refused:
        await db.rpc("service_role_discord_member", user_id="21", viewer_user_id="22")
    assert refused.value.error.sqlstate == "XPHID"
    own = await db.rpc("service_role_discord_member", user_id="21", viewer_user_id="21")
    assert own["display_name"] == "Hidden" and own["leaderboard_visible"] is False
    assert (await db.rpc("service_role_discord_member", user_id="21"))["xp"] == own["xp"]
    with pytest.raises(DomainError) as bad:
        await db.rpc("service_role_discord_member", user_id="21", viewer_user_id="not-a-snowflake")
    assert bad.value.error.sqlstate == "XPBAD"


async def test_the_bot_reads_another_members_card_as_the_viewer(db: Database) -> None:
    """/profile @them: public.profile_card run for the viewer, the very answer the viewer gets themself."""
    target = await db.rpc("ensure_profile", provider="discord", subject="50", display_name="Bob")
    viewer = await db.rpc("ensure_profile", provider="discord", subject="51", display_name="Carol")
    await award(db, target, "challenge_completed", "c", amount=600)
    async with db.as_service() as conn:
        await conn.execute(
            "update public.profiles set bio = 'secret bio', time_zone = 'Asia/Kolkata',"
            ' social_links = \'{"github": "https://github.com/bob"}\' where id = $1::uuid',
            target,
        )
    card = await db.rpc("service_role_discord_profile_card", user_id="50", viewer_user_id="51", recent=5)
    async with acting_as(db, "authenticated", viewer) as conn:
        as_viewer = await conn.fetchval("select public.profile_card($1::uuid, 5)", target)
    assert card == as_viewer
    assert card["is_self"] is False and card["xp"] == 600 and card["recent_activity"]
    assert not {"bio", "points", "time_zone", "social_links", "identities", "role", "created_at"} & set(card)
    own = await db.rpc("service_role_discord_profile_card", user_id="51", viewer_user_id="51")
    assert own["is_self"] is True and own["id"] == str(viewer)


async def test_the_bot_card_follows_profile_visibility_and_leaves_no_actor(db: Database) -> None:
    """A private card is XPHID to another member (not to staff); either side without a profile is XPPRF;
    the actor named for the call is cleared, so the backend sees every card again afterwards."""
    target = await db.rpc("ensure_profile", provider="discord", subject="60", display_name="Private")
    await db.rpc("ensure_profile", provider="discord", subject="61", display_name="Member")
    moderator = await db.rpc("ensure_profile", provider="discord", subject="62", display_name="Mod")
    async with db.as_service() as conn:
        await conn.execute(
            "update public.profiles set profile_visibility = 'private' where id = $1::uuid", target
        )
        await conn.execute("update public.profiles set role = 'moderator' where id = $1::uuid", moderator)
    with pytest.raises(DomainError) as hidden:
        await db.rpc("service_role_discord_profile_card", user_id="60", viewer_user_id="61")
    assert hidden.value.error.sqlstate == "XPHID"
    seen = await db.rpc("service_role_discord_profile_card", user_id="60", viewer_user_id="62")
    assert seen["display_name"] == "Private" and "bio" not in seen
    for user_id, viewer_id, sqlstate in (("60", "63", "XPPRF"), ("63", "61", "XPPRF"), ("60", "x", "XPBAD")):
        with pytest.raises(DomainError) as refused:
            await db.rpc("service_role_discord_profile_card", user_id=user_id, viewer_user_id=viewer_id)
        assert refused.value.error.sqlstate == sqlstate
    async with acting_as(db, "service_role") as conn:
        await conn.fetchval("select public.service_role_discord_profile_card('60', '62')")
        assert await conn.fetchval("select current_setting('xpbase.actor_id', true)") == ""
        card = await conn.fetchval("select public.profile_card($1::uuid)", target)
        assert card["is_self"] is False


async def _queue(db: Database) -> list[tuple[str, str, str | None, str | None, int, object]]:
    """The bot's queue: (kind, user id, guild, channel, attempts, claimed) per notification, oldest first."""
    async with db.pool.acquire() as conn:
        rows = await conn.fetch(
            "select kind, user_id, guild_id, channel_id, attempts, claimed_at is not null as claimed"
            " from private.discord_level_ups order by notification_id"
        )
    return [tuple(r) for r in rows]


async def test_level_ups_of_discord_members_are_queued_with_where_they_were_earned(db: Database) -> None:
    """A level-up from a message carries its guild and channel; one from the web carries none and its tier-up
    shares the award's ledger row; members without Discord are not queued (imports store no notification at
    all: tests/sql/test_imports.py)."""
    pid = await db.rpc("ensure_profile", provider="discord", subject="40", display_name="D")
    await award(db, pid, "challenge_completed", "warm-up", amount=140)
    receipt = await db.rpc(
        "service_role_discord_award",
        guild_id="1",
        user_id="40",
        display_name="D",
        activity="message",
        idempotency_key="m1",
        channel_id="7",
    )
    assert receipt["level"] == 2
    await db.rpc("admin_set_level", profile_id=pid, level=11, reason="web")  # the Member tier
    elsewhere = await new_profile(db, "W", provider="github")
    await award(db, elsewhere, "challenge_completed", "b", amount=200)
    assert await _queue(db) == [
        ("level_up", "40", "1", "7", 0, False),
        ("level_up", "40", None, None, 0, False),
        ("tier_up", "40", None, None, 0, False),
    ]


async def test_a_claim_takes_each_level_up_once_and_finishing_removes_it(db: Database) -> None:
    """Claimed rows are held for the lease (a second claim gets nothing), an award's level-up and tier-up
    come together, finished rows never come back, and a lapsed lease hands a row out again."""
    pid = await db.rpc("ensure_profile", provider="discord", subject="40", display_name="D")
    await award(db, pid, "challenge_completed", "a", amount=200)  # level 2
    await db.rpc("admin_set_level", profile_id=pid, level=11, reason="b")  # and the Member tier
    first = LevelUpClaim.model_validate(await db.rpc("service_role_claim_discord_level_ups", max_rows=1))
    assert [(c.kind, c.data.level) for c in first.level_ups if c.kind == "level_up"] == [("level_up", 2)]
    second = LevelUpClaim.model_validate(await db.rpc("service_role_claim_discord_level_ups", max_rows=1))
    assert [c.kind for c in second.level_ups] == ["level_up", "tier_up"]  # one award: claimed together
    assert second.level_ups[0].ledger_id == second.level_ups[1].ledger_id
    tier = second.level_ups[1]
    assert tier.kind == "tier_up" and tier.data.tier_name == "Member" and tier.attempts == 1
    assert (await db.rpc("service_role_claim_discord_level_ups"))["level_ups"] == []
    ids = [c.notification_id for c in first.level_ups + second.level_ups]
    assert await db.rpc("service_role_finish_discord_level_ups", notification_ids=ids[:1]) == 1
    assert await db.rpc("service_role_finish_discord_level_ups", notification_ids=ids[:1]) == 0
    async with db.pool.acquire() as conn:
        await conn.execute("update private.discord_level_ups set claimed_at = now() - interval '2 minutes'")
    lapsed = await db.rpc("service_role_claim_discord_level_ups", lease_seconds=60)
    again = LevelUpClaim.model_validate(lapsed)
    assert [(c.notification_id, c.attempts) for c in again.level_ups] == [(ids[1], 2), (ids[2], 2)]
    assert await db.rpc("service_role_finish_discord_level_ups", notification_ids=ids) == 2
    assert await _queue(db) == []


async def test_two_bots_claiming_at_once_never_share_a_level_up(db: Database) -> None:
    """A claim in an open transaction holds its rows: a second bot skips them and takes the next ones."""
    for subject in ("41", "42"):
        pid = await db.rpc("ensure_profile", provider="discord", subject=subject, display_name=subject)
        await award(db, pid, "challenge_completed", f"up-{subject}", amount=200)
    async with acting_as(db, "service_role") as one, acting_as(db, "service_role") as two:
        mine = await one.fetchval("select public.service_role_claim_discord_level_ups(1)")
        theirs = await two.fetchval("select public.service_role_claim_discord_level_ups(5)")
    users = [
        LevelUpClaim.model_validate_json(c) if isinstance(c, str) else LevelUpClaim.model_validate(c)
        for c in (mine, theirs)
    ]
    assert [[c.user_id for c in claim.level_ups] for claim in users] == [["41"], ["42"]]


@pytest.mark.parametrize(
    ("function", "params"),
    [
        ("service_role_claim_discord_level_ups", {"max_rows": 0}),
        ("service_role_claim_discord_level_ups", {"lease_seconds": 0}),
        ("service_role_finish_discord_level_ups", {"notification_ids": [1, None]}),
        ("service_role_finish_discord_level_ups", {"notification_ids": list(range(1001))}),
    ],
)
async def test_claims_and_finishes_validate_their_arguments(
    db: Database, function: str, params: dict[str, object]
) -> None:
    """Sizes out of range and null ids are XPBAD."""
    with pytest.raises(DomainError) as refused:
        await db.rpc(function, **params)
    assert refused.value.error.sqlstate == "XPBAD"
