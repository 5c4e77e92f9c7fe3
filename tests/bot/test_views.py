"""The leaderboard's paging buttons."""

from __future__ import annotations

from uuid import UUID

from bot.bot import XPBot
from bot.views import LeaderboardView
from tests.bot.discord_api import DiscordStandIn
from tests.bot.world import World
from xpbase.models.leaderboards import LeaderboardEntry


def row(rank: int) -> LeaderboardEntry:
    return LeaderboardEntry(
        rank=rank,
        profile_id=UUID(int=rank),
        display_name=f"Member {rank}",
        avatar_url=None,
        xp=1000 - rank,
        level=2,
        tier="basic",
    )


async def test_buttons_turn_pages_and_stop_at_the_ends(
    bot: XPBot, world: World, discord_api: DiscordStandIn
) -> None:
    """▶ fetches page 2 and edits the message; ◀ is off on page 1, ▶ on a short last page."""
    pages = {1: [row(n) for n in range(1, 11)], 2: [row(11)]}
    asked: list[int] = []

    async def fetch(page: int) -> list[LeaderboardEntry]:
        asked.append(page)
        return pages.get(page, [])

    view = LeaderboardView(owner_id=world.bob.id, title="Leaderboard", fetch=fetch, rows=pages[1])
    assert view.previous_page.disabled and not view.next_page.disabled
    await view.next_page.callback(world.click(world.bob, "next"))
    assert (asked, view.page, view.previous_page.disabled, view.next_page.disabled) == ([2], 2, False, True)
    [edit] = discord_api.find("PATCH", r"webhooks/\d+/tok-\d+/messages/@original")
    assert edit.embeds[0]["description"] == "`# 11` **Member 11** · level 2 · 989 XP"
    assert edit.embeds[0]["footer"]["text"] == "Page 2"
    await view.previous_page.callback(world.click(world.bob, "previous"))
    assert view.page == 1 and view.previous_page.disabled


async def test_a_full_last_page_switches_next_off_when_nothing_follows(bot: XPBot, world: World) -> None:
    """With exactly ten members, ▶ finds nothing, stays on page 1 and turns itself off."""

    async def fetch(page: int) -> list[LeaderboardEntry]:
        return [row(n) for n in range(1, 11)] if page == 1 else []

    view = LeaderboardView(owner_id=world.bob.id, title="Leaderboard", fetch=fetch, rows=await fetch(1))
    await view.next_page.callback(world.click(world.bob, "next"))
    assert view.page == 1 and view.next_page.disabled


async def test_next_stops_at_the_last_page_within_the_first_10000_rows(bot: XPBot, world: World) -> None:
    """Pages by number reach the first 10,000 rows (public.leaderboard refuses deeper ones): ▶ is off on
    page 1,000 of ten rows although the board goes on."""

    async def fetch(page: int) -> list[LeaderboardEntry]:
        return [row(n) for n in range(page * 10 - 9, page * 10 + 1)]

    view = LeaderboardView(owner_id=world.bob.id, title="Leaderboard", fetch=fetch, rows=await fetch(999))
    view.page = 999
    view._update_buttons()
    assert not view.next_page.disabled
    await view.next_page.callback(world.click(world.bob, "next"))
    assert view.page == 1000 and view.next_page.disabled and view.rows[-1].rank == 10000


async def test_only_the_member_who_asked_can_turn_pages(
    bot: XPBot, world: World, discord_api: DiscordStandIn
) -> None:
    """Someone else's click gets a private hint and changes nothing."""

    async def fetch(page: int) -> list[LeaderboardEntry]:
        raise AssertionError("must not fetch")

    view = LeaderboardView(owner_id=world.bob.id, title="Leaderboard", fetch=fetch, rows=[row(1)])
    click = world.click(world.carol, "next")
    assert await view.interaction_check(click) is False
    answer = discord_api.last_reply(click.id)
    assert answer.ephemeral and answer.content == "Run /leaderboard to page through your own copy."
