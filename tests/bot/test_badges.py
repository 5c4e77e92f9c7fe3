"""/badges: a member's badges with counts per level, for oneself or another member."""

from __future__ import annotations

from bot.bot import XPBot
from tests.bot.discord_api import DiscordStandIn
from tests.bot.world import World, user_option
from tests.helpers import award
from xpbase.db import Database


async def test_badges_of_self_and_of_another_member(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """A newcomer has none; after XP Bob holds First steps, which Carol sees too; a bot is refused."""
    empty = await world.run(world.interaction(world.bob, "badges"))
    assert "None yet" in discord_api.last_reply(empty.id).text
    profile_id = await bot.ensure_profile(world.member(world.bob))
    await award(db, profile_id, "challenge_completed", "seed", amount=600)
    own = await world.run(world.interaction(world.bob, "badges"))
    text = discord_api.last_reply(own.id).text
    assert "🥉 1" in text and "First steps" in text
    other = await world.run(
        world.interaction(
            world.carol, "badges", options=[user_option("member", world.bob)], resolve=[world.bob]
        )
    )
    assert "First steps" in discord_api.last_reply(other.id).text
