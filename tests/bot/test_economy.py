"""The economy cog: /addpoints, /removepoints, /buy, /redeem, /points, /inventory, the queue's buttons."""

from __future__ import annotations

import re
from typing import Any

import discord

from bot.bot import XPBot
from bot.cogs.economy import RedemptionButton
from tests.bot.discord_api import DiscordStandIn
from tests.bot.world import World, option, user_option
from xpbase.db import Database


async def run(world: World, who: Any, command: str, resolve: list[Any] | None = None, **values: Any) -> Any:
    options = [user_option(k, v) if k == "member" else option(k, v) for k, v in values.items()]
    return await world.run(world.interaction(who, command, options=options, resolve=resolve))


async def points_of(db: Database, world: World, person: Any) -> int:
    member = await db.rpc("service_role_discord_member", user_id=str(person.id), recent=0)
    return int(member["points"])


async def test_addpoints_and_removepoints_record_the_admin_and_floor_at_zero(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """An admin adds 200 points and removes 500: the ledger names them; the balance stops at zero."""
    added = await run(
        world, world.alice, "addpoints", [world.bob], member=world.bob, amount=200, reason="quiz"
    )
    assert "Added 200 points to <@702>: now 200" in discord_api.last_reply(added.id).text
    removed = await run(
        world, world.alice, "removepoints", [world.bob], member=world.bob, amount=500, reason="x"
    )
    answer = discord_api.last_reply(removed.id)
    assert answer.ephemeral and "Removed 200 points (all they had)" in answer.text
    actors = await db.pool.fetch(
        "select distinct actor_id from public.points_ledger where kind = 'admin_adjustment'"
    )
    alice = await db.rpc("service_role_discord_member", user_id=str(world.alice.id), recent=0)
    assert [str(r["actor_id"]) for r in actors] == [alice["profile_id"]]
    refused = await run(world, world.bob, "addpoints", [world.bob], member=world.bob, amount=5, reason="me")
    assert "Manage Server" in discord_api.last_reply(refused.id).text


async def test_buy_points_and_inventory(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """/buy takes the price; too poor is a friendly private refusal; /points and /inventory show it."""
    await db.rpc(
        "admin_save_store_item",
        item={"slug": "hat", "name": "Hat", "category": "cosmetic", "price_points": 150},
    )
    await run(world, world.alice, "addpoints", [world.bob], member=world.bob, amount=200, reason="seed")
    bought = await run(world, world.bob, "buy", item="hat")
    assert "Bought **Hat** for 150 points; 50 left." in discord_api.last_reply(bought.id).text
    poor = await run(world, world.bob, "buy", item="hat")
    reply = discord_api.last_reply(poor.id)
    assert reply.ephemeral and "You do not have enough points" in reply.text
    statement = await run(world, world.bob, "points")
    assert "50 points" in discord_api.last_reply(statement.id).text
    held = await run(world, world.bob, "inventory")
    assert "Hat ×1" in discord_api.last_reply(held.id).text
    assert await points_of(db, world, world.bob) == 50


async def test_redeem_then_approve_from_the_queue_button(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """/redeem with an email; /redemptions shows it with buttons; Approve moves it, naming the moderator."""
    await db.rpc(
        "admin_save_store_item",
        item={
            "slug": "card",
            "name": "Gift card",
            "category": "gift_card",
            "price_points": 100,
            "delivery": "email",
        },
    )
    await run(world, world.alice, "addpoints", [world.bob], member=world.bob, amount=100, reason="seed")
    redeemed = await run(world, world.bob, "redeem", item="card", email="bob@example.com")
    assert "Requested **Gift card**" in discord_api.last_reply(redeemed.id).text
    # Manage Server only shows the command: SQL wants approve_redemptions in Alice's xpbase role
    refused = await run(world, world.alice, "redemptions")
    assert discord_api.last_reply(refused.id).text == "You are not allowed to do that."
    alice = await db.rpc(
        "ensure_profile", provider="discord", subject=str(world.alice.id), display_name="Alice"
    )
    await db.pool.execute("update public.profiles set role = 'moderator' where id = $1", alice)
    queue = await run(world, world.alice, "redemptions")
    shown = discord_api.last_reply(queue.id)
    assert "bob@example.com" in shown.text
    custom_ids = [c["custom_id"] for row in shown.body["components"] for c in row["components"]]
    approve = next(c for c in custom_ids if c.startswith("redemption:approve:"))
    click = world.click(world.alice, approve)
    click._permissions = discord.Permissions(manage_guild=True).value  # alice may manage the server
    match = re.fullmatch(RedemptionButton.__discord_ui_compiled_template__, approve)
    assert match is not None
    button = await RedemptionButton.from_custom_id(click, discord.ui.Button(), match)
    carol = world.click(world.carol, approve)  # may manage the server in Discord, a member in xpbase
    carol._permissions = discord.Permissions(manage_guild=True).value
    await button.callback(carol)
    assert discord_api.last_reply(carol.id).text == "You are not allowed to do that."
    await button.callback(click)
    assert "is now **approved**" in discord_api.last_reply(click.id).text
    step = await db.pool.fetchrow(
        "select status, actor_id, actor_role from public.redemption_events order by id desc limit 1"
    )
    assert tuple(step) == ("approved", alice, "moderator")
    member_click = world.click(world.bob, approve)
    await button.callback(member_click)
    assert "Manage Server" in discord_api.last_reply(member_click.id).text
