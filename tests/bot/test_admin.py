"""Admin commands: XP corrections with the admin as actor, refusals, statistics, configuration, roles."""

from __future__ import annotations

from typing import Any

import pytest

from bot.bot import XPBot
from tests.bot.discord_api import DiscordStandIn
from tests.bot.world import World, channel_option, option, role_option, user_option
from tests.helpers import acting_as, award
from xpbase.db import Database


def correction(world: World, who: Any, command: str, target: Any, **values: Any) -> Any:
    options = [user_option("member", target)] + [option(k, v) for k, v in values.items()]
    return world.interaction(who, command, options=options, resolve=[target])


async def profile_of(db: Database, person: Any) -> dict[str, Any]:
    return await db.rpc("service_role_discord_member", user_id=str(person.id), recent=5)


async def ledger_rows(db: Database) -> list[dict[str, Any]]:
    async with acting_as(db, "service_role") as conn:
        rows = await conn.fetch(
            "select l.amount, l.reason, l.actor_id, l.actor_role, l.idempotency_key, l.activity_slug"
            " from public.xp_ledger l order by l.id"
        )
    return [dict(r) for r in rows]


async def test_addxp_records_the_admin_as_actor_with_the_reason(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """/addxp credits the member; the ledger holds the admin's profile and reason; the reply is private."""
    interaction = await world.run(
        correction(world, world.alice, "addxp", world.bob, amount=200, reason="won the quiz")
    )
    answer = discord_api.last_reply(interaction.id)
    assert answer.ephemeral and "Added 200 XP to <@702>" in answer.text
    admin = await profile_of(db, world.alice)
    [row] = await ledger_rows(db)
    assert (
        row["amount"] == 200
        and row["reason"] == "won the quiz"
        and row["activity_slug"] == "admin_adjustment"
    )
    assert (
        str(row["actor_id"]) == admin["profile_id"]
        and row["idempotency_key"] == f"discord:admin:{interaction.id}"
    )
    assert (await profile_of(db, world.bob))["xp"] == 200


async def test_a_retried_interaction_corrects_once(bot: XPBot, world: World, db: Database) -> None:
    """The same interaction delivered twice adds the XP once (the interaction id is the idempotency key)."""
    interaction = correction(world, world.alice, "addxp", world.bob, amount=50, reason="retry")
    await world.run(interaction)
    await world.run(
        world.interaction(world.alice, "addxp", options=interaction.data["options"], resolve=[world.bob])
    )
    again = correction(world, world.alice, "addxp", world.bob, amount=50, reason="retry")
    again.id = interaction.id
    await world.run(again)
    assert (await profile_of(db, world.bob))[
        "xp"
    ] == 100  # two distinct interactions, the retry added nothing


@pytest.mark.parametrize(
    "command", ["addxp", "removexp", "setlevel", "resetxp", "botstats", "resyncroles", "xpconfig show"]
)
async def test_members_without_manage_server_are_refused(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn, command: str
) -> None:
    """Every admin command refuses a member without Manage Server, privately, and changes nothing."""
    values = {
        "addxp": {"amount": 5, "reason": "x"},
        "removexp": {"amount": 5, "reason": "x"},
        "setlevel": {"level": 5, "reason": "x"},
        "resetxp": {"reason": "x"},
    }
    if command in values:
        interaction = correction(world, world.bob, command, world.carol, **values[command])
    else:
        interaction = world.interaction(world.bob, command)
    await world.run(interaction)
    answer = discord_api.last_reply(interaction.id)
    assert answer.ephemeral and answer.content == "You need the Manage Server permission for that."
    assert await ledger_rows(db) == []


async def test_removexp_for_a_member_without_a_profile_is_refused(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """Taking XP from someone who never earned any is refused as an unknown member."""
    interaction = await world.run(
        correction(world, world.alice, "removexp", world.dave, amount=10, reason="x")
    )
    answer = discord_api.last_reply(interaction.id)
    assert answer.ephemeral and answer.content == "That member has no profile yet."
    assert await ledger_rows(db) == []


async def test_removexp_setlevel_and_resetxp(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """removexp takes XP, setlevel puts the member at the level's start, resetxp brings XP to zero."""
    await world.run(correction(world, world.alice, "addxp", world.bob, amount=600, reason="seed"))
    await world.run(correction(world, world.alice, "removexp", world.bob, amount=100, reason="spam"))
    assert (await profile_of(db, world.bob))["xp"] == 500
    await world.run(
        correction(world, world.alice, "setlevel", world.bob, level=11, reason="migrated from MEE6")
    )
    bob = await profile_of(db, world.bob)
    assert (bob["level"], bob["xp"], bob["tier"]) == (11, 10_500, "member")
    interaction = await world.run(correction(world, world.alice, "resetxp", world.bob, reason="season reset"))
    assert "Reset <@702>'s XP (now 0 XP, level 1)" in discord_api.last_reply(interaction.id).text
    actors = {str(row["actor_id"]) for row in await ledger_rows(db)}
    assert actors == {(await profile_of(db, world.alice))["profile_id"]}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"level": 101, "reason": "too high"},
            "That level is not on the level curve. Level 101 is not on the level curve.",
        ),
        ({"level": 5, "reason": "   "}, "That input is not valid. reason must be 1 to 500 characters."),
    ],
)
async def test_bad_correction_input_gets_a_friendly_private_answer(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn, values: dict[str, Any], expected: str
) -> None:
    """A level off the curve or a blank reason is refused with the database's reason, privately."""
    interaction = await world.run(correction(world, world.alice, "setlevel", world.bob, **values))
    answer = discord_api.last_reply(interaction.id)
    assert answer.ephemeral and answer.content == expected
    assert await ledger_rows(db) == []


async def test_corrections_refuse_bots(bot: XPBot, world: World, discord_api: DiscordStandIn) -> None:
    """Bots do not earn XP, not even from an admin."""
    interaction = await world.run(
        correction(world, world.alice, "addxp", world.other_bot, amount=5, reason="x")
    )
    assert discord_api.last_reply(interaction.id).content == "Bots do not earn XP."


async def test_botstats_reports_profiles_and_todays_awards(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """/botstats shows the profile count, XP and today's passive awards."""
    await bot.get_cog("PassiveXP").on_message(world.message(world.bob, "hello"))  # type: ignore[union-attr]
    interaction = await world.run(world.interaction(world.alice, "botstats"))
    text = discord_api.last_reply(interaction.id).text
    assert "Profiles: 1 (1 on Discord)" in text and "Database: postgres" in text
    assert "Servers: 1" in text


async def test_xpconfig_writes_the_guild_configuration(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """Each /xpconfig subcommand saves through the database and shows the whole configuration."""
    run = world.run
    await run(
        world.interaction(
            world.alice,
            "xpconfig announcements",
            options=[option("mode", "channel"), channel_option("channel", world.announcements)],
            channels=[world.announcements],
        )
    )
    await run(
        world.interaction(
            world.alice,
            "xpconfig no-xp-channel",
            options=[channel_option("channel", world.spam)],
            channels=[world.spam],
        )
    )
    await run(
        world.interaction(
            world.alice,
            "xpconfig no-xp-role",
            options=[role_option("role", world.role_muted)],
            roles=[world.role_muted],
        )
    )
    await run(
        world.interaction(
            world.alice,
            "xpconfig multiplier-role",
            options=[role_option("role", world.role_booster), option("factor", 1.5)],
            roles=[world.role_booster],
        )
    )
    await run(
        world.interaction(
            world.alice,
            "xpconfig multiplier-channel",
            options=[channel_option("channel", world.general), option("factor", 2.0)],
            channels=[world.general],
        )
    )
    await run(
        world.interaction(
            world.alice,
            "xpconfig reward-level",
            options=[role_option("role", world.role_regular), option("level", 3)],
            roles=[world.role_regular],
        )
    )
    interaction = await run(
        world.interaction(
            world.alice,
            "xpconfig reward-tier",
            options=[role_option("role", world.role_veteran), option("tier", "member")],
            roles=[world.role_veteran],
        )
    )
    answer = discord_api.last_reply(interaction.id)
    assert answer.ephemeral and answer.content == "Saved."
    assert (
        f"<#{world.announcements}>" in answer.text
        and f"<@&{world.role_veteran}> at the Member tier" in answer.text
    )
    config = await db.rpc("service_role_discord_guild", guild_id=str(world.GUILD))
    assert config["announce_mode"] == "channel" and config["announce_channel_id"] == str(world.announcements)
    assert config["no_xp_channels"] == [str(world.spam)] and config["no_xp_roles"] == [str(world.role_muted)]
    assert {(m["kind"], m["target_id"], m["factor"]) for m in config["multipliers"]} == {
        ("role", str(world.role_booster), 1.5),
        ("channel", str(world.general), 2),
    }
    assert [(r["role_id"], r["level"]) for r in config["role_rewards"]] == [
        (str(world.role_regular), 3),
        (str(world.role_veteran), 11),
    ]
    await run(
        world.interaction(
            world.alice,
            "xpconfig reward-remove",
            options=[role_option("role", world.role_regular)],
            roles=[world.role_regular],
        )
    )
    await run(
        world.interaction(
            world.alice,
            "xpconfig multiplier-role",
            options=[role_option("role", world.role_booster), option("factor", 0.0)],
            roles=[world.role_booster],
        )
    )
    config = await db.rpc("service_role_discord_guild", guild_id=str(world.GUILD))
    assert [r["role_id"] for r in config["role_rewards"]] == [str(world.role_veteran)]
    assert [m["kind"] for m in config["multipliers"]] == ["channel"]


async def test_xpconfig_refuses_bad_input(bot: XPBot, world: World, discord_api: DiscordStandIn) -> None:
    """Mode channel without a channel, an unknown tier, and a role above the bot's are refused privately."""
    first = await world.run(
        world.interaction(world.alice, "xpconfig announcements", options=[option("mode", "channel")])
    )
    assert (
        discord_api.last_reply(first.id).text == "That input is not valid. mode channel needs a channel_id."
    )
    second = await world.run(
        world.interaction(
            world.alice,
            "xpconfig reward-tier",
            options=[role_option("role", world.role_regular), option("tier", "legend")],
            roles=[world.role_regular],
        )
    )
    assert discord_api.last_reply(second.id).text == "That input is not valid. Unknown tier: legend."
    third = await world.run(
        world.interaction(
            world.alice,
            "xpconfig reward-level",
            options=[role_option("role", world.role_above), option("level", 2)],
            roles=[world.role_above],
        )
    )
    assert discord_api.last_reply(third.id).text == "I cannot give Above: move my role above it first."
    assert all(r.ephemeral for r in discord_api.replies())


async def test_resyncroles_brings_drifted_roles_back_in_line(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """Missing reward roles are added, reward roles a member no longer earns are removed, others kept."""
    guild = str(world.GUILD)
    await db.rpc(
        "service_role_discord_set_role_reward", guild_id=guild, role_id=str(world.role_regular), min_level=2
    )
    await db.rpc(
        "service_role_discord_set_role_reward", guild_id=guild, role_id=str(world.role_veteran), min_level=5
    )
    bob = await bot.ensure_profile(world.member(world.bob))
    await award(db, bob, "challenge_completed", "quest", amount=1000)  # level 3
    world.set_roles(world.bob, world.role_veteran)  # drifted: Veteran without level 5, no Regular
    world.set_roles(world.carol, world.role_booster, world.role_regular)  # Carol has no XP: Regular goes
    interaction = await world.run(world.interaction(world.alice, "resyncroles"))
    assert sorted(discord_api.role_changes()) == sorted(
        [
            ("add", world.bob.id, world.role_regular),
            ("remove", world.bob.id, world.role_veteran),
            ("remove", world.carol.id, world.role_regular),
        ]
    )
    assert (
        discord_api.last_reply(interaction.id).text
        == "Checked 4 members: added 1 and removed 2 reward roles."
    )
