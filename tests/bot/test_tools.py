"""/tools: the caller's tools with how they got each."""

from __future__ import annotations

from bot.bot import XPBot
from tests.bot.discord_api import DiscordStandIn
from tests.bot.world import World
from xpbase.db import Database


async def test_tools_lists_tier_and_admin_tools(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """A newcomer holds the Basic tier's tools; an admin unlock shows up with its source."""
    first = await world.run(world.interaction(world.bob, "tools"))
    text = discord_api.last_reply(first.id).text
    assert "Your tools (4)" in text and "Rank card" in text and "tier Basic" in text
    profile_id = await bot.ensure_profile(world.member(world.bob))
    await db.rpc("admin_unlock_tool", profile_id=profile_id, tool="polls", reason="runs the weekly poll")
    again = await world.run(world.interaction(world.bob, "tools"))
    text = discord_api.last_reply(again.id).text
    assert "Your tools (5)" in text and "Polls" in text and "unlocked by an admin" in text
