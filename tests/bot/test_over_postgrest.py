"""The bot over PostgREST (SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY set): same commands, same rules."""

from __future__ import annotations

import pytest

from bot.bot import XPBot
from tests.bot.discord_api import DiscordStandIn
from tests.bot.world import T0, World, option, user_option
from tests.postgrest_standin import PostgrestStandIn
from xpbase.db import Database
from xpbase.rpc import RPC, PostgrestRPC


@pytest.fixture
def rpc(postgrest_rpc: PostgrestRPC) -> RPC:
    """Overrides the asyncpg transport of tests/bot/conftest.py for this module."""
    return postgrest_rpc


async def test_messages_and_admin_commands_work_over_postgrest(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn, postgrest: PostgrestStandIn
) -> None:
    """Message XP, a refused and an accepted /addxp, and /xp go through POST /rest/v1/rpc/<name>."""
    assert bot.rpc.transport == "postgrest"
    receipt = await bot.get_cog("PassiveXP").on_message(world.message(world.bob, "hello", at=T0))  # type: ignore[union-attr]
    assert receipt is not None and receipt.granted == 15
    bad = await world.run(
        world.interaction(
            world.alice,
            "setlevel",
            resolve=[world.bob],
            options=[user_option("member", world.bob), option("level", 500), option("reason", "x")],
        )
    )
    assert discord_api.last_reply(bad.id).content == (
        "That level is not on the level curve. Level 500 is not on the level curve."
    )
    good = await world.run(
        world.interaction(
            world.alice,
            "addxp",
            resolve=[world.bob],
            options=[user_option("member", world.bob), option("amount", 135), option("reason", "welcome")],
        )
    )
    assert "now 150 XP, level 2" in discord_api.last_reply(good.id).text
    # Before /xp: a member command earns command XP in a task of its own, which may land at any time after.
    assert (await db.rpc("service_role_discord_member", user_id=str(world.bob.id)))["xp"] == 150
    mine = await world.run(world.interaction(world.bob, "xp"))
    assert "**150 XP** · level 2" in discord_api.last_reply(mine.id).text
    called = {r.path.removeprefix("/rest/v1/rpc/") for r in postgrest.requests}
    assert {
        "service_role_award_group",  # passive XP goes through the group commit (xpbase/group_commit.py)
        "service_role_admin_set_level",
        "service_role_admin_adjust_xp",
        "service_role_discord_member",
        "ensure_profile",
    } <= called


async def test_the_rewards_cog_polls_over_postgrest(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """PostgREST cannot LISTEN: the rewards cog claims queued level-ups by RPC and announces them."""
    await db.rpc(
        "service_role_discord_set_announcements",
        guild_id=str(world.GUILD),
        mode="channel",
        channel_id=str(world.announcements),
    )
    rewards = bot.get_cog("Rewards")
    await rewards.start()  # type: ignore[union-attr]
    assert rewards._listener is None  # type: ignore[union-attr]
    profile_id = await bot.ensure_profile(world.member(world.carol))
    await db.rpc(
        "award_xp", profile_id=profile_id, activity="challenge_completed", idempotency_key="web", amount=200
    )
    assert await rewards.process() == 1  # type: ignore[union-attr]
    [message] = discord_api.channel_messages(world.announcements)
    assert message.content == "🎉 <@703> reached **level 2**!"
