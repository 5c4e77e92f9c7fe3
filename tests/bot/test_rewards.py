"""Level-up announcements and reward roles, from the database's queue of level-ups (bot/cogs/rewards.py).

Every award is acted on when the Rewards cog processes the queue, wherever the
XP came from: the tests award, check that nothing happened yet, and process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from bot.bot import XPBot
from tests.bot.discord_api import DiscordStandIn
from tests.bot.world import T0, World, option, user_option
from tests.helpers import award
from xpbase.db import Database
from xpbase.models.discord import DiscordAwardReceipt

if TYPE_CHECKING:
    from bot.cogs.rewards import Rewards


def cog(bot: XPBot, name: str) -> Any:
    found = bot.get_cog(name)
    assert found is not None
    return found


def rewards(bot: XPBot) -> Rewards:
    """The loaded cog (load_extension imports its own module object: no isinstance against this import)."""
    found = bot.get_cog("Rewards")
    assert found is not None and type(found).__name__ == "Rewards"
    return bot.rewards


async def set_role_reward(db: Database, world: World, role_id: int, **rule: Any) -> None:
    """A reward role for the test guild: ``min_level=N`` or ``tier=slug``."""
    await db.rpc(
        "service_role_discord_set_role_reward", guild_id=str(world.GUILD), role_id=str(role_id), **rule
    )


async def set_announcements(db: Database, world: World, mode: str, channel_id: int | None) -> None:
    """Where the test guild announces level-ups (off, current, channel, dm)."""
    await db.rpc(
        "service_role_discord_set_announcements",
        guild_id=str(world.GUILD),
        mode=mode,
        channel_id=None if channel_id is None else str(channel_id),
    )


async def reach_level_two(bot: XPBot, world: World, db: Database) -> DiscordAwardReceipt:
    """Bob at 140 XP, then one message (15 XP) in #general takes him to level 2 (150 XP)."""
    profile_id = await bot.ensure_profile(world.member(world.bob))
    await award(db, profile_id, "challenge_completed", "warm-up", amount=140)
    receipt = await cog(bot, "PassiveXP").on_message(world.message(world.bob, "level me up", at=T0))
    assert isinstance(receipt, DiscordAwardReceipt)
    assert receipt.level_before == 1 and receipt.level == 2
    return receipt


async def test_level_up_is_announced_in_the_current_channel_and_the_reward_role_given(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """By default the level-up is announced where the XP was earned, and the level-2 reward role is added."""
    await set_role_reward(db, world, world.role_regular, min_level=2)
    await reach_level_two(bot, world, db)
    assert discord_api.channel_messages() == [] and discord_api.role_changes() == []  # the queue decides
    assert await rewards(bot).process() == 1
    [announcement] = discord_api.channel_messages()
    assert announcement.path == f"channels/{world.general}/messages"
    assert announcement.content == "🎉 <@702> reached **level 2**!"
    assert discord_api.role_changes() == [("add", world.bob.id, world.role_regular)]


@pytest.mark.parametrize(("mode", "where"), [("channel", "announcements"), ("dm", "dm"), ("off", None)])
async def test_announcements_go_where_the_guild_wants_them(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn, mode: str, where: str | None
) -> None:
    """mode channel posts in the announcement channel, dm sends a direct message, off posts nothing."""
    await set_announcements(db, world, mode, world.announcements if mode == "channel" else None)
    await reach_level_two(bot, world, db)
    await rewards(bot).process()
    messages = discord_api.channel_messages()
    if where is None:
        assert messages == []
    elif where == "dm":
        [dm] = discord_api.find("POST", "users/@me/channels")
        assert dm.body == {"recipient_id": world.bob.id}
        assert [m.content for m in messages] == ["🎉 You reached **level 2** in **xpbase test server**!"]
    else:
        assert [m.path for m in messages] == [f"channels/{world.announcements}/messages"]


async def test_a_tier_up_names_the_tools_it_unlocks(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """Reaching level 11 announces the Member tier and the four tools it unlocks."""
    profile_id = await bot.ensure_profile(world.member(world.bob))
    await award(db, profile_id, "challenge_completed", "big", amount=1000)
    for n in range(10):
        await award(db, profile_id, "xp_purchase", f"buy-{n}", amount=948)
    await award(db, profile_id, "xp_purchase", "buy-last", amount=5)  # 10,485 XP: 15 short of level 11
    await rewards(bot).process()  # the warm-up's level-ups (no channel to announce them in by default)
    assert discord_api.channel_messages() == []
    receipt = await cog(bot, "PassiveXP").on_message(world.message(world.bob, "to the next tier", at=T0))
    assert receipt.level == 11
    assert await rewards(bot).process() == 1  # the level-up and the tier-up of one award: one message
    [announcement] = discord_api.channel_messages()
    assert announcement.content == (
        "🎉 <@702> reached **level 11**!\n"
        "⭐ <@702> is now in the **Member** tier, unlocking "
        "Custom rank card, Event sign-up, Store, Streak freezes."
    )


async def test_losing_a_level_takes_the_reward_role_away(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """/removexp below the reward's level removes the role at once (a loss queues nothing), unannounced."""
    await set_role_reward(db, world, world.role_regular, min_level=2)
    await reach_level_two(bot, world, db)
    await rewards(bot).process()
    world.set_roles(world.bob, world.role_regular)
    await world.run(
        world.interaction(
            world.alice,
            "removexp",
            resolve=[world.bob],
            options=[user_option("member", world.bob), option("amount", 100), option("reason", "spam")],
        )
    )
    assert discord_api.role_changes()[-1] == ("remove", world.bob.id, world.role_regular)
    assert await rewards(bot).process() == 0
    assert len(discord_api.channel_messages()) == 1  # only the level-up


async def test_level_ups_from_elsewhere_come_through_the_same_queue(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """XP awarded by the web or the service is announced (in the announcement channel: it was not earned in
    a channel) and its roles applied, once."""
    await set_announcements(db, world, "current", world.announcements)
    await set_role_reward(db, world, world.role_veteran, tier="member")
    profile_id = await bot.ensure_profile(world.member(world.carol))
    await award(db, profile_id, "challenge_completed", "web-1", amount=1000)
    for n in range(10):
        await award(db, profile_id, "xp_purchase", f"web-buy-{n}", amount=950)  # 10,500 XP: level 11
    handled = await rewards(bot).process()
    texts = [m.content for m in discord_api.channel_messages(world.announcements)]
    assert handled == len(texts) > 1  # one announcement per award that crossed a level
    assert texts[-1].startswith("🎉 <@703> reached **level 11**!\n⭐ <@703> is now in the **Member** tier")
    assert discord_api.role_changes() == [("add", world.carol.id, world.role_veteran)]
    assert await rewards(bot).process() == 0


async def test_a_level_up_from_addxp_is_announced_in_the_announcement_channel(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """/addxp goes through the same queue; a correction has no channel: "current" uses the configured one."""
    await set_announcements(db, world, "current", world.announcements)
    await world.run(
        world.interaction(
            world.alice,
            "addxp",
            resolve=[world.bob],
            options=[user_option("member", world.bob), option("amount", 150), option("reason", "welcome")],
        )
    )
    assert discord_api.channel_messages() == []
    assert await rewards(bot).process() == 1
    [message] = discord_api.channel_messages()
    assert (message.path, message.content) == (
        f"channels/{world.announcements}/messages",
        "🎉 <@702> reached **level 2**!",
    )


async def test_a_replayed_message_is_not_announced_again(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """The gateway delivering the same message again replays its award: no second level-up to act on."""
    profile_id = await bot.ensure_profile(world.member(world.bob))
    await award(db, profile_id, "challenge_completed", "warm-up", amount=140)
    message = world.message(world.bob, "level me up", at=T0)
    first = await cog(bot, "PassiveXP").on_message(message)
    assert first is not None and first.level == 2
    assert await rewards(bot).process() == 1
    replayed = await cog(bot, "PassiveXP").on_message(message)
    assert replayed is not None and replayed.replayed
    assert await rewards(bot).process() == 0
    assert len(discord_api.channel_messages()) == 1


async def test_level_ups_from_while_the_bot_was_away_get_roles_but_no_message(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """A level-up queued over an hour ago is still acted on (its reward role), without an announcement."""
    await set_role_reward(db, world, world.role_regular, min_level=2)
    await reach_level_two(bot, world, db)
    async with db.pool.acquire() as conn:
        await conn.execute("update public.notifications set created_at = now() - interval '2 hours'")
    assert await rewards(bot).process() == 1
    assert discord_api.channel_messages() == []
    assert discord_api.role_changes() == [("add", world.bob.id, world.role_regular)]


async def test_a_role_change_discord_refuses_is_counted_not_fatal(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """When Discord answers 403 to a role change, the award and the announcement still happen."""
    await set_role_reward(db, world, world.role_regular, min_level=2)
    discord_api.refuse_roles = True
    await reach_level_two(bot, world, db)
    assert await rewards(bot).process() == 1
    result = await bot.rewards.sync_roles(world.guild, [world.member(world.bob)])
    assert (result.added, result.failed) == (0, 1)
    assert len(discord_api.channel_messages()) == 1
