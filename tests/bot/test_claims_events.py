"""The claims cog: /claim, /claims with Approve and Reject buttons, /pointvalues, /events and /join."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import discord

from bot.bot import XPBot
from bot.cogs.claims import ClaimButton
from tests.bot.discord_api import DiscordStandIn
from tests.bot.world import World, option
from tests.helpers import load_career_pack
from xpbase.db import Database


async def run(world: World, who: Any, command: str, **values: Any) -> Any:
    options = [option(k, v) for k, v in values.items()]
    return await world.run(world.interaction(who, command, options=options))


async def test_claim_then_approve_from_the_queue_button(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """/claim waits for review; /claims lists it with buttons; Approve awards once; members are refused."""
    await load_career_pack(db)
    values = await run(world, world.bob, "pointvalues")
    assert "LinkedIn update" in discord_api.last_reply(values.id).text
    claimed = await run(
        world,
        world.bob,
        "claim",
        activity="linkedin_update",
        note="New headline",
        evidence="https://x.example/b",
    )
    assert "is waiting for a reviewer" in discord_api.last_reply(claimed.id).text
    again = await run(world, world.bob, "claim", activity="linkedin_update")
    assert "claimed that as often as allowed" in discord_api.last_reply(again.id).text

    queue = await run(world, world.alice, "claims")
    shown = discord_api.last_reply(queue.id)
    assert "New headline" in shown.text
    custom_ids = [c["custom_id"] for row in shown.body["components"] for c in row["components"]]
    approve = next(c for c in custom_ids if c.startswith("claim:approve:"))
    match = re.fullmatch(ClaimButton.__discord_ui_compiled_template__, approve)
    assert match is not None
    member_click = world.click(world.bob, approve)
    button = await ClaimButton.from_custom_id(member_click, discord.ui.Button(), match)
    await button.callback(member_click)
    assert "Manage Server" in discord_api.last_reply(member_click.id).text
    for _ in range(2):
        click = world.click(world.alice, approve)
        click._permissions = discord.Permissions(manage_guild=True).value
        await button.callback(click)
        assert "is **approved** (+5 XP)" in discord_api.last_reply(click.id).text
    member = await db.rpc("service_role_discord_member", user_id=str(world.bob.id), recent=0)
    assert member["xp"] == 5


async def test_events_and_join_show_the_gate_and_the_line(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    start = datetime.now(UTC) + timedelta(days=2)
    window = {"starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=1)).isoformat()}
    gated = await db.rpc(
        "admin_save_event",
        event={
            "title": "Deep dungeon",
            "layer": "cyber",
            "min_status": "synced",
            "online_url": "https://d.example",
            **window,
        },
    )
    small = await db.rpc(
        "admin_save_event",
        event={"title": "Small talk", "layer": "reality", "capacity": 1, "location": "Cafe", **window},
    )
    listed = await run(world, world.bob, "events")
    text = discord_api.last_reply(listed.id).text
    assert (
        "Deep dungeon (dungeon, cyber)" in text and "needs cyber status 'synced', you are 'offline'" in text
    )
    refused = await run(world, world.bob, "join", event=gated["id"])
    assert "needs cyber status 'synced', you are 'offline'" in discord_api.last_reply(refused.id).text
    first = await run(world, world.alice, "join", event=small["id"])
    assert "You have a place at **Small talk**" in discord_api.last_reply(first.id).text
    second = await run(world, world.bob, "join", event=small["id"])
    assert "you are number 1 in line" in discord_api.last_reply(second.id).text
