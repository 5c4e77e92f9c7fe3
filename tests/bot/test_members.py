"""Member commands: /xp, /levels, /profile, /rank, /leaderboard, /checkin, /streak, /link."""

from __future__ import annotations

import io

from PIL import Image

from bot.bot import XPBot
from bot.rank_card import HEIGHT, WIDTH
from tests.bot.conftest import require_rpc
from tests.bot.discord_api import AVATAR_COLOUR, DiscordStandIn
from tests.bot.world import World, option, user_option
from tests.helpers import award
from xpbase.db import Database


async def bob_with_xp(bot: XPBot, world: World, db: Database, amount: int = 600) -> str:
    profile_id = await bot.ensure_profile(world.member(world.bob))
    await award(db, profile_id, "challenge_completed", "seed", amount=amount)
    # The server's members, as the bot records them when the guild becomes available.
    await bot.get_cog("Servers").record(world.guild)  # type: ignore[union-attr]
    return profile_id


async def test_xp_shows_totals_layers_and_latest_entries(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """/xp answers privately with total XP, level, points, each layer and the latest entries."""
    await bob_with_xp(bot, world, db)
    interaction = await world.run(world.interaction(world.bob, "xp"))
    answer = discord_api.last_reply(interaction.id)
    assert answer.ephemeral
    assert "**600 XP** · level 3 (450 XP to level 4) · Basic tier" in answer.text
    assert "Reality: 600 XP · Awakened" in answer.text and "+600 XP · Challenge completed" in answer.text


async def test_xp_for_a_newcomer_makes_their_profile(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """A member's first command creates their profile from their Discord identity."""
    interaction = await world.run(world.interaction(world.dave, "xp"))
    assert "**0 XP** · level 1" in discord_api.last_reply(interaction.id).text
    assert (await db.rpc("service_role_discord_member", user_id=str(world.dave.id)))["display_name"] == "Dave"


async def test_levels_lists_the_curve_and_the_tiers_with_unlocks(
    bot: XPBot, world: World, discord_api: DiscordStandIn
) -> None:
    """/levels shows the curve and each tier's levels, starting XP and tools, publicly."""
    interaction = await world.run(world.interaction(world.bob, "levels"))
    answer = discord_api.last_reply(interaction.id)
    assert not answer.ephemeral
    assert "level 2: 150 XP" in answer.text
    assert "Member · levels 11-25: from 10,500 XP · unlocks Custom rank card" in answer.text


async def test_profile_of_another_member_shows_only_their_card(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """/profile @bob by Carol: the card Carol would see on the web (level, tier, rank, layers), none of Bob's
    private fields (bio, points, links, time zone, linked accounts, member since)."""
    bob = await bob_with_xp(bot, world, db)
    async with db.as_service() as conn:
        await conn.execute(
            "update public.profiles set bio = 'Bob''s secret bio', time_zone = 'Asia/Kolkata',"
            ' social_links = \'{"github": "https://github.com/bob-private"}\' where id = $1::uuid',
            bob,
        )
    interaction = await world.run(
        world.interaction(
            world.carol, "profile", options=[user_option("member", world.bob)], resolve=[world.bob]
        )
    )
    answer = discord_api.last_reply(interaction.id)
    text = answer.text
    assert answer.ephemeral
    assert "Level: 3 (600 XP)" in text and "Tier: Basic" in text and "Rank: #1 of " in text
    assert "Reality: Awakened" in text
    for private in (
        "secret bio",
        "Points",
        "600 points",
        "bob-private",
        "Links",
        "Asia/Kolkata",
        "Linked accounts",
        "discord",
        "Member since",
    ):
        assert private not in text, private


async def test_profile_of_oneself_shows_the_private_fields(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """/profile (or /profile @me) by Bob: his bio, points, links and linked accounts too."""
    bob = await bob_with_xp(bot, world, db)
    async with db.as_service() as conn:
        await conn.execute(
            "update public.profiles set bio = 'Bob''s secret bio',"
            ' social_links = \'{"github": "https://github.com/bob-private"}\' where id = $1::uuid',
            bob,
        )
    for options in ([], [user_option("member", world.bob)]):
        interaction = await world.run(
            world.interaction(world.bob, "profile", options=options, resolve=[world.bob] if options else [])
        )
        text = discord_api.last_reply(interaction.id).text
        # Points and XP: 600 and whatever the passive XP of the command's message added.
        assert "Bob's secret bio" in text and "Points: 6" in text and "Linked accounts: discord" in text
        assert "github: https://github.com/bob-private" in text and "Level: 3 (6" in text


async def test_a_private_profile_is_refused_to_another_member(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """profile_visibility private: /profile @bob by Carol is refused privately, as the card is on the web."""
    bob = await bob_with_xp(bot, world, db)
    async with db.as_member(bob) as conn:
        await conn.execute(
            "update public.profiles set profile_visibility = 'private' where id = $1::uuid", bob
        )
    interaction = await world.run(
        world.interaction(
            world.carol, "profile", options=[user_option("member", world.bob)], resolve=[world.bob]
        )
    )
    answer = discord_api.last_reply(interaction.id)
    assert answer.ephemeral and answer.content == "That member keeps their profile private."


async def test_profile_of_an_unknown_member_is_refused(
    bot: XPBot, world: World, discord_api: DiscordStandIn
) -> None:
    """Asking for a member who never earned XP answers privately that they have no profile."""
    interaction = await world.run(
        world.interaction(
            world.bob, "profile", options=[user_option("member", world.dave)], resolve=[world.dave]
        )
    )
    answer = discord_api.last_reply(interaction.id)
    assert answer.ephemeral and answer.content == "That member has no profile yet."


async def test_rank_of_a_bot_is_refused(bot: XPBot, world: World, discord_api: DiscordStandIn) -> None:
    """Bots have no rank card."""
    interaction = await world.run(
        world.interaction(
            world.bob, "rank", options=[user_option("member", world.other_bot)], resolve=[world.other_bot]
        )
    )
    answer = discord_api.last_reply(interaction.id)
    assert answer.ephemeral and answer.content == "Bots do not earn XP."


async def test_commands_work_in_direct_messages(
    bot: XPBot, world: World, discord_api: DiscordStandIn
) -> None:
    """/xp in a DM with the bot answers too (no guild needed)."""
    interaction = await world.run(world.interaction(world.bob, "xp", in_dm=True))
    assert "level 1" in discord_api.last_reply(interaction.id).text


async def test_admin_commands_are_refused_in_direct_messages(
    bot: XPBot, world: World, discord_api: DiscordStandIn
) -> None:
    """An admin command outside a server is refused."""
    interaction = await world.run(world.interaction(world.alice, "botstats", in_dm=True))
    assert discord_api.last_reply(interaction.id).ephemeral


async def test_leaderboard_with_an_unknown_layer_is_refused(
    bot: XPBot, world: World, discord_api: DiscordStandIn
) -> None:
    """A layer that does not exist is refused before anything is shown."""
    interaction = await world.run(
        world.interaction(world.bob, "leaderboard", options=[option("layer", "astral")])
    )
    answer = discord_api.last_reply(interaction.id)
    assert (
        answer.ephemeral
        and answer.content == "There is no layer called 'astral': pick one of reality, cyber."
    )


async def test_leaderboard_with_an_unknown_season_is_refused(
    bot: XPBot, world: World, discord_api: DiscordStandIn
) -> None:
    """A season id that does not exist is refused privately."""
    interaction = await world.run(
        world.interaction(world.bob, "leaderboard", options=[option("season", 424242)])
    )
    answer = discord_api.last_reply(interaction.id)
    assert answer.ephemeral and answer.content == "That season does not exist."


# Commands that call RPCs of other issues -------------------------------------------------------


def bronze(pixel: tuple[int, int, int]) -> bool:
    """A warm, saturated pixel such as the bronze medal emoji's (the card's text is grey or white)."""
    red, green, blue = pixel
    return red > green + 40 and red > blue + 70


def colours(image: Image.Image) -> list[tuple[int, int, int]]:
    """Every colour an RGB image holds, once each (getcolors; getdata is deprecated since Pillow 12.1)."""
    counted = image.getcolors(image.width * image.height)  # None only above maxcolors: never here
    assert counted is not None
    return [colour for _count, colour in counted]


async def test_rank_answers_with_a_rank_card_png(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """/rank attaches the card: a 934x282 PNG with the member's avatar from the CDN and their badge marks."""
    await require_rpc(db, "leaderboard_rank", "issue 4 (streaks, seasons, leaderboards)")
    await bob_with_xp(bot, world, db)
    interaction = await world.run(world.interaction(world.bob, "rank"))
    answer = discord_api.last_reply(interaction.id)
    [card] = answer.files.values()
    image = Image.open(io.BytesIO(card)).convert("RGB")
    assert image.size == (WIDTH, HEIGHT)
    assert image.getpixel((140, 141)) == AVATAR_COLOUR
    # Bob's first XP earned the default badge First steps: a bronze medal (🥉, warm pixels) bottom right;
    # Carol has no badge, and her footer is grey text only.
    footer = (280, 214, 894, 262)
    assert any(bronze(colour) for colour in colours(image.crop(footer)))
    await bot.ensure_profile(world.member(world.carol))
    bare = await world.run(world.interaction(world.carol, "rank"))
    [bare_card] = discord_api.last_reply(bare.id).files.values()
    corner = Image.open(io.BytesIO(bare_card)).convert("RGB").crop(footer)
    assert not any(bronze(colour) for colour in colours(corner))


async def test_leaderboard_pages_with_buttons(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """/leaderboard shows the top ten with ◀ ▶ buttons."""
    await require_rpc(db, "leaderboard", "issue 4 (streaks, seasons, leaderboards)")
    await bob_with_xp(bot, world, db)
    interaction = await world.run(world.interaction(world.bob, "leaderboard"))
    answer = discord_api.last_reply(interaction.id)
    assert "**Bob** · level 3 · 600 XP" in answer.text
    buttons = [c for row in answer.body.get("components", []) for c in row["components"]]
    assert [b["label"] for b in buttons] == ["◀", "▶"]


async def test_checkin_and_streak(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """/checkin starts a streak and earns XP; a second one the same day earns nothing; /streak reports it."""
    await require_rpc(db, "service_role_check_in", "issue 4 (streaks, seasons, leaderboards)")
    first = await world.run(world.interaction(world.bob, "checkin"))
    assert "day **1** of your streak" in discord_api.last_reply(first.id).text
    second = await world.run(world.interaction(world.bob, "checkin"))
    assert "already checked in today" in discord_api.last_reply(second.id).text
    streak = await world.run(world.interaction(world.bob, "streak"))
    assert "Streak: **1** days" in discord_api.last_reply(streak.id).text


async def test_link_with_a_bad_code_is_refused(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """/link with a code nobody issued is refused privately and links nothing."""
    await require_rpc(db, "service_role_redeem_link_code", "issue 5 (sign-in and account linking)")
    interaction = await world.run(world.interaction(world.bob, "link", options=[option("code", "NOPE-1234")]))
    answer = discord_api.last_reply(interaction.id)
    assert answer.ephemeral


async def test_checkin_reports_the_xp_credited_a_level_up_and_the_milestone(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """/checkin reads the typed check-in receipt: the XP credited (not +0), level-up, milestone."""
    from datetime import UTC, datetime, timedelta

    pid = await db.rpc("ensure_profile", provider="discord", subject=str(world.bob.id), display_name="Bob")
    await db.rpc("award_xp", profile_id=pid, activity="challenge_completed", idempotency_key="c", amount=125)
    now = datetime.now(UTC)
    for days_ago in (2, 1):  # day 1 (5 XP) and day 2 (10 XP) of the streak: 140 XP, still level 1
        await db.rpc("service_role_check_in", profile_id=pid, at=now - timedelta(days=days_ago))
    answer = await world.run(world.interaction(world.bob, "checkin"))
    text = discord_api.last_reply(answer.id).text
    assert "day **3** of your streak, **+15 XP**" in text
    assert "Level up: you are now level **2**" in text
    assert "Milestone: a 3-day streak!" in text


async def test_hidden_members_profile_and_rank_are_private_to_others(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """Hidden from boards: /profile and /rank @them are refused privately; the member still sees their own."""
    bob = await bob_with_xp(bot, world, db)
    async with db.as_service() as conn:
        await conn.execute("update public.profiles set leaderboard_visible = false where id = $1::uuid", bob)
    for command in ("profile", "rank"):
        interaction = await world.run(
            world.interaction(
                world.carol, command, options=[user_option("member", world.bob)], resolve=[world.bob]
            )
        )
        answer = discord_api.last_reply(interaction.id)
        assert answer.ephemeral and answer.content == "That member keeps their profile private."
        assert not answer.files and "600" not in answer.text
    own = await world.run(
        world.interaction(
            world.bob, "profile", options=[user_option("member", world.bob)], resolve=[world.bob]
        )
    )
    assert "Level: 3 (600 XP)" in discord_api.last_reply(own.id).text
    own_rank = await world.run(world.interaction(world.bob, "rank"))
    assert len(discord_api.last_reply(own_rank.id).files) == 1
