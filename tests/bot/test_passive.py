"""Passive XP: messages (cooldown in the database, replays), voice minutes, member commands."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from typing import Any

import pytest

from bot.bot import XPBot
from bot.cogs.passive import CooldownHints, PassiveXP, has_words, voice_earners
from tests.bot.world import T0, World
from tests.helpers import acting_as
from xpbase.db import Database
from xpbase.settings import Settings


def passive(bot: XPBot) -> PassiveXP:
    # load_extension imports the cog module afresh, so the loaded class is not this module's PassiveXP.
    cog = bot.get_cog("PassiveXP")
    assert cog is not None
    return cog  # type: ignore[return-value]


async def ledger(db: Database, activity: str | None = None) -> list[dict[str, Any]]:
    async with acting_as(db, "service_role") as conn:
        rows = await conn.fetch(
            "select l.idempotency_key, l.amount, l.occurred_at, i.subject from public.xp_ledger l"
            " join public.identities i on i.profile_id = l.profile_id"
            " where $1::text is null or l.activity_slug = $1 order by l.id",
            activity,
        )
    return [dict(r) for r in rows]


async def test_a_message_earns_message_xp_under_its_own_id(bot: XPBot, world: World, db: Database) -> None:
    """A member's message credits 15 XP with the message id as the idempotency key, at the message's time."""
    message = world.message(world.bob, "hello everyone", at=T0)
    receipt = await passive(bot).on_message(message)
    assert receipt is not None and receipt.granted == 15
    assert await ledger(db) == [
        {
            "idempotency_key": f"discord:message:{message.id}",
            "amount": 15,
            "occurred_at": T0,
            "subject": "702",
        }
    ]


@pytest.mark.parametrize(
    "content",
    ["", "   ", "👍", "👍🏽 🎉", "👨‍👩‍👧‍👦", "❤️", "<:pepe:123456789012345678>", "<a:dance:1234> 🎉 \n"],
)
async def test_empty_and_emoji_only_messages_earn_nothing(
    bot: XPBot, world: World, db: Database, content: str
) -> None:
    """Whitespace, Unicode emoji (skin tones, families, variation selectors) and custom emoji earn nothing."""
    assert await passive(bot).on_message(world.message(world.bob, content)) is None
    assert await ledger(db) == []


@pytest.mark.parametrize("content", ["ok", "gg 👍", "<:pepe:123> nice", "1"])
def test_messages_with_words_count(content: str) -> None:
    """Any character besides whitespace and emoji makes a message count."""
    assert has_words(content)


async def test_bots_webhooks_system_messages_and_dms_earn_nothing(
    bot: XPBot, world: World, db: Database
) -> None:
    """Bots, webhooks, join/pin system messages and direct messages never reach the database."""
    cog = passive(bot)
    assert await cog.on_message(world.message(world.other_bot, "beep boop")) is None
    assert await cog.on_message(world.message(world.bob, "from a webhook", webhook=True)) is None
    assert await cog.on_message(world.message(world.bob, "pinned a message", kind=6)) is None
    assert await cog.on_message(world.dm(world.bob, "hi bot")) is None
    assert await ledger(db) == []


async def test_messages_handled_at_once_share_one_transaction(bot: XPBot, world: World, db: Database) -> None:
    """Three members' messages handled at the same moment go to the database as one group commit (one
    call, one transaction), and each message gets its own receipt."""
    cog = passive(bot)
    people = (world.bob, world.carol, world.dave)
    messages = [world.message(person, f"hi from {person.name}", at=T0) for person in people]
    receipts = await asyncio.gather(*(cog.on_message(message) for message in messages))
    assert [r.idempotency_key for r in receipts if r is not None] == [
        f"discord:message:{m.id}" for m in messages
    ]
    assert [r.granted for r in receipts if r is not None] == [15, 15, 15]
    assert bot.awards is not None and (bot.awards.groups_sent, bot.awards.calls_sent) == (1, 3)
    assert await db.pool.fetchval("select count(distinct recorded_at) from public.xp_ledger") == 1


async def test_without_the_group_commit_each_award_is_its_own_call(
    bot: XPBot, world: World, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """XPBASE_AWARD_GROUP_COMMIT=false: no group, and passive XP calls service_role_discord_award."""
    settings = Settings(_env_file=None, DISCORD_TOKEN="test-token", award_group_commit=False)
    assert XPBot(rpc=bot.rpc, settings=settings).awards is None
    called: list[str] = []
    call_json = bot.rpc.call_json

    async def spy(function: str, /, **params: Any) -> Any:
        called.append(function)
        return await call_json(function, **params)

    monkeypatch.setattr(bot, "awards", None)
    monkeypatch.setattr(bot.rpc, "call_json", spy)
    receipt = await passive(bot).on_message(world.message(world.bob, "hello", at=T0))
    assert receipt is not None and receipt.granted == 15
    assert called == ["service_role_discord_award"]


async def test_no_xp_channels_and_roles_earn_nothing(bot: XPBot, world: World, db: Database) -> None:
    """Messages in a no-XP channel, or by a member holding a no-XP role, are skipped by the database."""
    guild = str(world.GUILD)
    await db.rpc(
        "service_role_discord_set_no_xp",
        guild_id=guild,
        kind="channel",
        target_id=str(world.spam),
        no_xp=True,
    )
    await db.rpc(
        "service_role_discord_set_no_xp",
        guild_id=guild,
        kind="role",
        target_id=str(world.role_muted),
        no_xp=True,
    )
    cog = passive(bot)
    in_spam = await cog.on_message(world.message(world.bob, "spam spam", channel_id=world.spam))
    world.set_roles(world.carol, world.role_muted)
    muted = await cog.on_message(world.message(world.carol, "let me talk"))
    assert in_spam is not None and in_spam.skipped == "no_xp_channel"
    assert muted is not None and muted.skipped == "no_xp_role"
    assert await ledger(db) == []
    back = await cog.on_message(world.message(world.bob, "back in general"))
    assert back is not None and back.granted == 15


async def test_role_and_channel_multipliers_multiply_message_xp(
    bot: XPBot, world: World, db: Database
) -> None:
    """A 2x Booster role and a 1.5x channel multiply (15 x 2 x 1.5 = 45 XP)."""
    guild = str(world.GUILD)
    await db.rpc(
        "service_role_discord_set_multiplier",
        guild_id=guild,
        kind="role",
        target_id=str(world.role_booster),
        factor=2,
    )
    await db.rpc(
        "service_role_discord_set_multiplier",
        guild_id=guild,
        kind="channel",
        target_id=str(world.announcements),
        factor=1.5,
    )
    receipt = await passive(bot).on_message(
        world.message(world.carol, "boosted", channel_id=world.announcements)
    )
    assert receipt is not None and receipt.granted == 45 and receipt.multiplier == 3


async def test_ten_thousand_messages_in_ten_minutes_give_at_most_eleven_awards(
    bot: XPBot, world: World, db: Database
) -> None:
    """One member posting 10,000 messages over 10 simulated minutes is credited at most once per minute."""
    cog = passive(bot)
    for n in range(10_000):
        at = T0 + dt.timedelta(milliseconds=60 * n)  # 10,000 x 60 ms = 600 s
        await cog.on_message(world.message(world.bob, f"message {n}", at=at))
    credited = [row for row in await ledger(db, "message") if row["amount"] > 0]
    assert 10 <= len(credited) <= 11
    gaps = [b["occurred_at"] - a["occurred_at"] for a, b in itertools.pairwise(credited)]
    assert all(gap >= dt.timedelta(seconds=60) for gap in gaps)
    profile = await db.rpc("service_role_discord_member", user_id=str(world.bob.id))
    assert profile["xp"] == 15 * len(credited)


async def test_every_message_asked_of_the_database_still_gives_one_award_a_minute(
    bot: XPBot, world: World, db: Database
) -> None:
    """Without the bot's cooldown hints (a fresh bot for every message), the database alone holds the line."""
    cog = passive(bot)
    for n in range(600):
        cog.cooldowns = CooldownHints()
        await cog.on_message(world.message(world.bob, f"message {n}", at=T0 + dt.timedelta(seconds=n * 0.25)))
    credited = [row for row in await ledger(db, "message") if row["amount"] > 0]
    assert len(credited) == 3  # 0 s, 60 s, 120 s of a 150 s burst


async def test_replayed_message_ids_credit_nothing(bot: XPBot, world: World, db: Database) -> None:
    """A gateway replay of the same messages, even after a restart and with changed roles, credits nothing."""
    cog = passive(bot)
    messages = [world.message(world.bob, f"m{n}", at=T0 + dt.timedelta(minutes=2 * n)) for n in range(3)]
    for message in messages:
        await cog.on_message(message)
    before = await ledger(db)
    assert [row["amount"] for row in before] == [15, 15, 15]
    cog.cooldowns = CooldownHints()  # a restart forgets everything the bot knew
    world.set_roles(world.bob, world.role_booster)  # the member's roles changed since the first delivery
    for message in messages:
        replay = await cog.on_message(message)
        assert replay is None or replay.granted == 0
    for message in messages:
        world.set_roles(world.bob)
        replay = await cog.on_message(message)
        assert replay is not None and replay.replayed is True and replay.granted == 15
    assert await ledger(db) == before


async def test_a_restart_does_not_reset_the_cooldown(bot: XPBot, world: World, db: Database) -> None:
    """The cooldown lives in the database: 30 s after a credited message, a restarted bot credits nothing."""
    cog = passive(bot)
    await cog.on_message(world.message(world.bob, "first", at=T0))
    cog.cooldowns = CooldownHints()
    second = await cog.on_message(world.message(world.bob, "second", at=T0 + dt.timedelta(seconds=30)))
    assert second is not None and second.granted == 0 and second.cooldown_remaining_seconds == 30


def test_cooldown_hints_cover_only_the_window_the_database_reported() -> None:
    """After "30 s of cooldown left" at t, messages in [t, t + 29 s) are skipped, nothing else."""
    hints = CooldownHints()
    hints.note(1, T0, 30)
    assert hints.holds(1, T0) and hints.holds(1, T0 + dt.timedelta(seconds=28.9))
    assert not hints.holds(1, T0 + dt.timedelta(seconds=29))
    assert not hints.holds(1, T0 - dt.timedelta(seconds=1))
    assert not hints.holds(2, T0)
    hints.note(3, T0, 0)
    assert not hints.holds(3, T0)


# Voice ------------------------------------------------------------------------------------


async def test_voice_minute_goes_to_members_talking_with_another_human(
    bot: XPBot, world: World, db: Database
) -> None:
    """Two members in Lounge both earn voice_minute; keys name guild, member and minute."""
    world.voice(world.bob, world.lounge)
    world.voice(world.carol, world.lounge)
    receipts = await passive(bot).award_voice_minute(T0 + dt.timedelta(seconds=42))
    assert sorted(r.granted for r in receipts) == [10, 10]
    minute = int(T0.timestamp()) // 60
    assert sorted(row["idempotency_key"] for row in await ledger(db)) == [
        f"discord:voice:{world.GUILD}:{world.bob.id}:{minute}",
        f"discord:voice:{world.GUILD}:{world.carol.id}:{minute}",
    ]
    assert {row["occurred_at"] for row in await ledger(db)} == {T0}


async def test_the_same_voice_minute_twice_credits_once(bot: XPBot, world: World, db: Database) -> None:
    """Two ticks in one minute (a restart, a second shard) credit the minute once; the next minute again."""
    world.voice(world.bob, world.lounge)
    world.voice(world.carol, world.lounge)
    cog = passive(bot)
    await cog.award_voice_minute(T0)
    again = await cog.award_voice_minute(T0 + dt.timedelta(seconds=59))
    assert all(r.replayed for r in again)
    await cog.award_voice_minute(T0 + dt.timedelta(minutes=1))
    assert [row["amount"] for row in await ledger(db)] == [10, 10, 10, 10]


@pytest.mark.parametrize("flag", ["self_mute", "self_deaf", "mute", "deaf", "suppress"])
async def test_muted_deafened_or_suppressed_members_earn_no_voice_xp(world: World, flag: str) -> None:
    """Self or server mute or deafen, or a stage's suppression, earns nothing; the other member earns."""
    world.voice(world.bob, world.lounge, **{flag: True})
    world.voice(world.carol, world.lounge)
    assert [(m.id, c.id) for m, c in voice_earners(world.guild)] == [(world.carol.id, world.lounge)]


async def test_alone_with_bots_or_in_the_afk_channel_earns_no_voice_xp(world: World) -> None:
    """A member alone, with only a bot, or in the AFK channel with others, earns nothing."""
    world.voice(world.bob, world.lounge)
    world.voice(world.other_bot, world.lounge)
    world.voice(world.carol, world.afk)
    world.voice(world.dave, world.afk)
    assert voice_earners(world.guild) == []
    world.voice(world.dave, world.quiet)
    world.voice(world.carol, None)
    assert voice_earners(world.guild) == []


async def test_no_xp_voice_channel_earns_nothing(bot: XPBot, world: World, db: Database) -> None:
    """A voice channel marked no-XP earns no voice minutes."""
    await db.rpc(
        "service_role_discord_set_no_xp",
        guild_id=str(world.GUILD),
        kind="channel",
        target_id=str(world.lounge),
        no_xp=True,
    )
    world.voice(world.bob, world.lounge)
    world.voice(world.carol, world.lounge)
    receipts = await passive(bot).award_voice_minute(T0)
    assert [r.skipped for r in receipts] == ["no_xp_channel", "no_xp_channel"]
    assert await ledger(db) == []


# Commands ---------------------------------------------------------------------------------


async def test_member_commands_earn_command_xp_and_admin_commands_do_not(
    bot: XPBot, world: World, db: Database
) -> None:
    """A completed member command earns 5 XP keyed by the interaction; an admin command earns nothing."""
    interaction = world.interaction(world.bob, "levels")
    levels = bot.tree.get_command("levels")
    receipt = await passive(bot).on_app_command_completion(interaction, levels)  # type: ignore[arg-type]
    assert receipt is not None and receipt.granted == 5
    admin = world.interaction(world.alice, "botstats")
    botstats = bot.tree.get_command("botstats")
    assert await passive(bot).on_app_command_completion(admin, botstats) is None  # type: ignore[arg-type]
    assert [row["idempotency_key"] for row in await ledger(db)] == [f"discord:command:{interaction.id}"]
