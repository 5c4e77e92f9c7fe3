"""/warn, /suspend, /unsuspend: one service_role_moderate call acting for the moderator's profile."""

from __future__ import annotations

from typing import Any

from bot.bot import XPBot
from tests.bot.discord_api import DiscordStandIn
from tests.bot.world import World, option, user_option
from tests.helpers import award
from xpbase.db import Database
from xpbase.errors import DomainError


def command(world: World, who: Any, name: str, target: Any, **values: Any) -> Any:
    options = [user_option("member", target)] + [option(k, v) for k, v in values.items()]
    return world.interaction(who, name, options=options, resolve=[target])


async def profile_id(db: Database, person: Any) -> Any:
    return await db.rpc(
        "ensure_profile", provider="discord", subject=str(person.id), display_name=person.name
    )


async def test_a_moderator_suspends_and_unsuspends_a_member(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    moderator = await profile_id(db, world.alice)
    await db.pool.execute("update public.profiles set role = 'moderator' where id = $1", moderator)
    suspended = await world.run(command(world, world.alice, "suspend", world.bob, reason="spam", days=2))
    answer = discord_api.last_reply(suspended.id)
    assert answer.ephemeral and "Suspended <@702> until <t:" in answer.text
    bob = await profile_id(db, world.bob)
    try:
        await award(db, bob, "event_attendance", "bot-suspended", amount=10)
        raise AssertionError("a suspended member earned XP")
    except DomainError as exc:
        assert exc.error.sqlstate == "XPSUS"
    lifted = await world.run(command(world, world.alice, "unsuspend", world.bob, reason="ok"))
    assert "Lifted the suspension of <@702>" in discord_api.last_reply(lifted.id).text
    warned = await world.run(command(world, world.alice, "warn", world.bob, reason="be kind"))
    assert "Warned <@702>" in discord_api.last_reply(warned.id).text
    record = await db.rpc("moderation_record", profile_id=bob)
    assert [a["kind"] for a in record["actions"]] == ["warning", "suspension"]


async def test_a_member_without_the_role_is_refused_privately(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """Discord permissions aside, SQL refuses an actor whose xpbase role may not warn."""
    interaction = await world.run(command(world, world.dave, "warn", world.bob, reason="x"))
    answer = discord_api.last_reply(interaction.id)
    assert answer.ephemeral and answer.content == "You are not allowed to do that."
    assert await db.pool.fetchval("select count(*) from public.moderation_actions") == 0
