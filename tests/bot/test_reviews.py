"""Resume review commands: /resume, /reviews (confirm, cancel, rate), /add_professional, /match_review."""

from __future__ import annotations

from typing import Any

from bot.bot import XPBot
from bot.cogs.reviews import RatingModal, ReviewsView
from tests.bot.discord_api import DiscordStandIn
from tests.bot.world import MANAGE_GUILD, Person, World, option, user_option
from tests.helpers import acting_as
from tests.sql.reviews_world import EVERY_DAY, book, next_weekday_at, professional, weekly
from xpbase.db import Database
from xpbase.models.reviews import MatchRecords, MyReviews


async def discord_profile(db: Database, person: Person, *, admin: bool = False) -> str:
    """The profile the bot uses for ``person`` (made now, as the bot would), an xpbase admin if asked."""
    profile_id = str(
        await db.rpc("ensure_profile", provider="discord", subject=str(person.id), display_name=person.name)
    )
    if admin:
        async with db.as_service() as conn:
            await conn.execute("update public.profiles set role = 'admin' where id = $1", profile_id)
    return profile_id


async def my_reviews(db: Database, profile_id: str) -> MyReviews:
    return MyReviews.model_validate(await db.rpc("my_reviews", profile_id=profile_id))


async def professionals(db: Database) -> list[dict[str, Any]]:
    async with acting_as(db, "service_role") as conn:
        rows = await conn.fetch("select name, profile_id, time_zone, specialties from public.professionals")
    return [dict(r) for r in rows]


def resume(world: World, person: Person, **values: Any) -> Any:
    return world.interaction(person, "resume", options=[option(k, v) for k, v in values.items()])


# /resume ----------------------------------------------------------------------------------------


async def test_resume_asks_for_a_review_in_the_members_time_zone(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """/resume reads the free-text times in the member's zone and records the request as the member."""
    await professional(
        db, "Asia/Kolkata", weekly(EVERY_DAY, "00:00", "24:00"), specialties=["resume", "data"]
    )
    interaction = await world.run(
        resume(
            world,
            world.bob,
            target_role="Data analyst",
            times="Tue/Thu 7-9pm",
            time_zone="America/Los_Angeles",
            specialties="data, resume",
            resume_link="https://example.org/bob.pdf",
        )
    )
    answer = discord_api.last_reply(interaction.id)
    assert answer.ephemeral and "Review request #" in answer.text and "Tue 19:00-21:00" in answer.text
    [request] = (await my_reviews(db, await discord_profile(db, world.bob))).requests
    assert (request.target_role, request.time_zone, request.specialties, request.resume_url) == (
        "Data analyst",
        "America/Los_Angeles",
        ["data", "resume"],
        "https://example.org/bob.pdf",
    )
    assert [(t.weekday, t.start_minute, t.end_minute) for t in request.preferred_times] == [
        (2, 1140, 1260),
        (4, 1140, 1260),
    ]


async def test_specialties_are_suggested_from_the_database_one_comma_at_a_time(
    bot: XPBot, world: World, db: Database
) -> None:
    """Autocomplete offers the active specialties matching the last word, after those already chosen."""
    cog = bot.get_cog("Reviews")
    typing = world.interaction(world.bob, "resume")
    choices = await cog.specialty_choices(typing, "resume, soft")  # type: ignore[union-attr]
    assert [(c.name, c.value) for c in choices] == [
        ("resume, Software engineering (software)", "resume, software")
    ]
    everything = await cog.specialty_choices(typing, "")  # type: ignore[union-attr]
    assert "design" in {c.value for c in everything} and len(everything) >= 8


async def test_resume_refuses_unreadable_times_and_a_second_open_request(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """Vague times are refused before any database call; a second open request gets XPRVO's reply."""
    await professional(db, "Europe/Berlin", weekly(EVERY_DAY, "00:00", "24:00"))
    vague = await world.run(resume(world, world.bob, target_role="PM", times="evenings", time_zone="UTC"))
    answer = discord_api.last_reply(vague.id)
    assert answer.ephemeral and "could not read those times" in answer.text and "vague" in answer.text
    first = await world.run(resume(world, world.bob, target_role="PM", times="Sat 10am-1pm Europe/Berlin"))
    assert "Review request #" in discord_api.last_reply(first.id).text
    second = await world.run(resume(world, world.bob, target_role="PM", times="Sun 10am-1pm Europe/Berlin"))
    answer = discord_api.last_reply(second.id)
    assert answer.ephemeral and answer.content == "You already have an open review request."
    assert len((await my_reviews(db, await discord_profile(db, world.bob))).requests) == 1


# /reviews ---------------------------------------------------------------------------------------


async def booked_review(db: Database, world: World) -> tuple[str, int, dict[str, Any]]:
    """Bob's request, booked with a reviewer who is Carol; returns (Bob's profile, request id, pro)."""
    bob = await discord_profile(db, world.bob)
    carol = await discord_profile(db, world.carol)
    pro = await professional(db, "UTC", weekly(EVERY_DAY, "00:00", "24:00"), profile_id=carol, name="Carol")
    request = await db.rpc(
        "request_review",
        profile_id=bob,
        request={
            "target_role": "Backend engineer",
            "specialties": ["resume"],
            "time_zone": "UTC",
            "preferred_times": weekly(EVERY_DAY, "00:00", "24:00"),
        },
    )
    await book(db, request["id"], pro["id"], next_weekday_at(3, 10))
    return bob, request["id"], pro


def submission(modal: RatingModal, rating: str, comment: str) -> list[dict[str, Any]]:
    """The components of a MODAL_SUBMIT interaction: one action row per text input, with its value."""
    return [
        {"type": 1, "components": [{"type": 4, "custom_id": item.custom_id, "value": value}]}
        for item, value in ((modal.rating, rating), (modal.comment, comment))
    ]


def button(view: ReviewsView, custom_id: str) -> Any:
    [found] = [item for item in view.children if getattr(item, "custom_id", None) == custom_id]
    return found


async def test_reviews_lists_and_confirms_then_rates_a_completed_review(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """/reviews shows the booked session with Confirm and Cancel; Confirm records the member's
    confirmation; once completed, Rate opens the form and a rating 1-5 reaches the reviewer's mean."""
    bob, request_id, pro = await booked_review(db, world)
    interaction = await world.run(world.interaction(world.bob, "reviews"))
    answer = discord_api.last_reply(interaction.id)
    assert answer.ephemeral and "Backend engineer" in answer.text and "with **Carol**" in answer.text
    cog = bot.get_cog("Reviews")
    mine = await my_reviews(db, bob)
    view = ReviewsView(cog, owner_id=world.bob.id, profile_id=bob, mine=mine)  # type: ignore[arg-type]
    assert {getattr(i, "custom_id", None) for i in view.children} == {
        f"review:confirm:{request_id}",
        f"review:cancel:{request_id}",
    }
    click = world.click(world.bob, f"review:confirm:{request_id}")
    await button(view, f"review:confirm:{request_id}").callback(click)
    assert "Confirmed: review" in discord_api.last_reply(click.id).text
    session = (await my_reviews(db, bob)).requests[0].session
    assert session is not None and session.member_confirmed and not session.professional_confirmed
    assert {getattr(i, "custom_id", None) for i in view.children} == {f"review:cancel:{request_id}"}

    # The session took place (moved into the past as the database owner): the backend completes it.
    async with db.pool.acquire() as conn:
        await conn.execute(
            "update public.review_sessions set during = tstzrange(now() - interval '2 hours',"
            " now() - interval '75 minutes') where request_id = $1",
            request_id,
        )
    await db.rpc("review_action", request_id=request_id, action="complete")
    view.fill(await my_reviews(db, bob))
    rate = button(view, f"review:rate:{request_id}")
    press = world.click(world.bob, f"review:rate:{request_id}")
    await rate.callback(press)
    [modal_sent] = [r for r in discord_api.find("POST", rf"interactions/{press.id}/[^/]+/callback")]
    assert modal_sent.body["type"] == 9  # MODAL

    modal = RatingModal(view, request_id)
    wrong = world.click(world.bob, "rating")
    await modal._dispatch_submit(wrong, submission(modal, "7", ""), {})  # what discord.py does on submit
    assert discord_api.last_reply(wrong.id).content == "A rating is 1 to 5."
    submit = world.click(world.bob, "rating")
    await modal._dispatch_submit(submit, submission(modal, "5", "Clear and kind"), {})
    assert "you rated review" in discord_api.last_reply(submit.id).text
    async with acting_as(db, "service_role") as conn:
        rating = await conn.fetchval("select rating from public.professionals where id = $1", pro["id"])
        body = await conn.fetchval("select body from public.review_feedback")
    assert float(rating) == 5.0 and body == "Clear and kind"


async def test_someone_elses_review_buttons_do_nothing(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """Dave pressing Bob's Cancel gets a private hint; the request stays scheduled."""
    bob, request_id, _ = await booked_review(db, world)
    view = ReviewsView(
        bot.get_cog("Reviews"), owner_id=world.bob.id, profile_id=bob, mine=await my_reviews(db, bob)
    )  # type: ignore[arg-type]
    click = world.click(world.dave, f"review:cancel:{request_id}")
    assert await view.interaction_check(click) is False
    assert discord_api.last_reply(click.id).content == "Run /reviews to see your own reviews."
    assert (await my_reviews(db, bob)).requests[0].status == "scheduled"


async def test_the_reviewer_confirms_the_session_they_review(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """Carol reviews Bob's request: her /reviews has reviewer buttons; Confirm records her side."""
    bob, request_id, _ = await booked_review(db, world)
    carol = await discord_profile(db, world.carol)
    mine = await my_reviews(db, carol)
    view = ReviewsView(bot.get_cog("Reviews"), owner_id=world.carol.id, profile_id=carol, mine=mine)  # type: ignore[arg-type]
    assert [getattr(i, "label", None) for i in view.children] == [
        f"Confirm #{request_id} (reviewer)",
        f"Cancel #{request_id} (reviewer)",
    ]
    click = world.click(world.carol, f"review:confirm:{request_id}")
    await button(view, f"review:confirm:{request_id}").callback(click)
    session = (await my_reviews(db, bob)).requests[0].session
    assert session is not None and session.professional_confirmed and not session.member_confirmed


# /add_professional --------------------------------------------------------------------------------


async def test_add_professional_saves_a_reviewer_with_availability_as_the_admin(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """An xpbase admin adds a reviewer linked to Carol's profile, with weekly times read in their zone."""
    await discord_profile(db, world.alice, admin=True)
    interaction = await world.run(
        world.interaction(
            world.alice,
            "add_professional",
            options=[
                option("name", "Priya"),
                option("time_zone", "Asia/Kolkata"),
                option("specialties", "resume, software"),
                option("availability", "Tue/Thu 7-9am"),
                user_option("member", world.carol),
                option("weekly_capacity", 3),
            ],
            resolve=[world.carol],
        )
    )
    answer = discord_api.last_reply(interaction.id)
    assert answer.ephemeral and "Reviewer **Priya** saved" in answer.text and "Tue 07:00-09:00" in answer.text
    [saved] = await professionals(db)
    assert (str(saved["profile_id"]), saved["time_zone"], saved["specialties"]) == (
        await discord_profile(db, world.carol),
        "Asia/Kolkata",
        ["resume", "software"],
    )


async def test_add_professional_needs_an_xpbase_admin(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """Manage Server shows the command, but the database refuses a profile that is not an admin."""
    interaction = await world.run(
        world.interaction(
            world.dave,
            "add_professional",
            options=[option("name", "Priya"), option("time_zone", "Asia/Kolkata")],
            permissions=MANAGE_GUILD,
        )
    )
    answer = discord_api.last_reply(interaction.id)
    assert answer.ephemeral and answer.content.startswith("Only xpbase admins manage resume reviews")
    assert await professionals(db) == []


# /match_review ------------------------------------------------------------------------------------


async def test_match_review_proposes_then_books_as_the_admin(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """A dry run proposes one match and books nothing; the real run books it, recorded with the admin."""
    alice = await discord_profile(db, world.alice, admin=True)
    bob = await discord_profile(db, world.bob)
    await professional(db, "Europe/Berlin", weekly(EVERY_DAY, "08:00", "20:00"))
    await db.rpc(
        "request_review",
        profile_id=bob,
        request={
            "target_role": "Designer",
            "specialties": ["resume"],
            "time_zone": "America/New_York",
            "preferred_times": weekly(EVERY_DAY, "08:00", "12:00"),
        },
    )
    dry = await world.run(world.interaction(world.alice, "match_review", options=[option("dry_run", True)]))
    answer = discord_api.last_reply(dry.id)
    assert answer.ephemeral and answer.embeds[0]["title"] == "Proposed 1 of 1 open review requests"
    assert (await my_reviews(db, bob)).requests[0].session is None
    real = await world.run(world.interaction(world.alice, "match_review"))
    assert discord_api.last_reply(real.id).embeds[0]["title"] == "Booked 1 of 1 open review requests"
    [request] = (await my_reviews(db, bob)).requests
    assert request.status == "scheduled" and request.session is not None
    [record] = MatchRecords.model_validate(await db.rpc("admin_review_matches", request_id=request.id)).root
    assert str(record.actor_id) == alice and record.terms["specialty"] == 1.0


async def test_match_review_needs_manage_server(
    bot: XPBot, world: World, db: Database, discord_api: DiscordStandIn
) -> None:
    """A member without Manage Server is refused privately before anything runs."""
    interaction = await world.run(world.interaction(world.bob, "match_review"))
    answer = discord_api.last_reply(interaction.id)
    assert answer.ephemeral and answer.content == "You need the Manage Server permission for that."
