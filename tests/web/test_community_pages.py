"""Community pages in a real browser: the events page ``/events`` and the board of one Discord server
``/?server=ID``, served once for the module by ``xpbase serve`` on one database.

Playwright drives Debian's chromium as in tests/web/test_pages.py (same requirements and skip rules); the
screenshots land in tests/artifacts/ (``events.png``, ``events-phone.png``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pytest_postgresql.executors.noop import NoopExecutor

from tests.conftest import cloned_database
from tests.helpers import award, new_profile
from tests.web.serve import served
from tests.web.test_pages import ARTIFACTS, CHROMIUM, PHONE, playwright_api, pytestmark  # noqa: F401
from xpbase.db import Database, member_claims

SECRET_LINK = "https://meet.example.org/raid-secret"
MEMBERS = {"1": [("11", "Ana", 900), ("12", "Ben", 400), ("13", "Hid", 700)], "2": [("21", "Zed", 5000)]}


async def _community(url: str) -> dict[str, Any]:
    """A full career fair (two places, one waiting), an open dungeon run online, and one that is over."""
    db = await Database.connect(url, min_size=1, max_size=4)
    try:
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(hour=18, minute=0, second=0, microsecond=0)
        fair = await db.rpc(
            "admin_save_event",
            event={
                "title": "Career fair",
                "description": "Meet hiring teams.",
                "layer": "reality",
                "min_status": "grounded",
                "capacity": 2,
                "starts_at": tomorrow.isoformat(),
                "ends_at": (tomorrow + timedelta(hours=2)).isoformat(),
                "location": "Community hall",
                "xp": 50,
            },
        )
        await db.rpc(
            "admin_save_event",
            event={
                "title": "Night raid",
                "layer": "cyber",
                "min_level": 5,
                "min_tier": "member",
                "starts_at": (tomorrow + timedelta(days=2)).isoformat(),
                "ends_at": (tomorrow + timedelta(days=2, hours=3)).isoformat(),
                "online_url": SECRET_LINK,
                "xp": 80,
            },
        )
        await db.rpc(
            "admin_save_event",
            event={
                "title": "Last week's meetup",
                "layer": "reality",
                "starts_at": (tomorrow - timedelta(days=8)).isoformat(),
                "ends_at": (tomorrow - timedelta(days=8) + timedelta(hours=1)).isoformat(),
                "location": "Library",
            },
        )
        for name in ("Ana", "Ben", "Cai"):  # Grounded needs 2,500 reality XP
            pid = await new_profile(db, name)
            await award(db, pid, "challenge_completed", f"{name}-{0}", amount=1000)
            await award(db, pid, "challenge_completed", f"{name}-{1}", amount=1000)
            await award(db, pid, "challenge_completed", f"{name}-{2}", amount=500)
            await db.rpc("join_event", role="authenticated", claims=member_claims(pid), event_id=fair["id"])
        return fair
    finally:
        await db.close()


async def _servers(url: str) -> None:
    """Server 1: Ana, Ben and Hid (who hides from boards); server 2: Zed, the community's top member."""
    db = await Database.connect(url, min_size=1, max_size=2)
    try:
        for guild, people in MEMBERS.items():
            await db.rpc(
                "service_role_discord_see_members",
                guild_id=guild,
                members=[{"user_id": user, "display_name": name} for user, name, _ in people],
            )
            for user, name, xp in people:
                pid = await db.rpc("ensure_profile", provider="discord", subject=user, display_name=name)
                await award(db, pid, "challenge_completed", f"seed-{user}", amount=min(xp, 1000))
                if xp > 1000:
                    await award(db, pid, "xp_purchase", f"more-{user}", amount=xp - 1000)
                if name == "Hid":
                    async with db.transaction("authenticated", member_claims(pid)) as conn:
                        await conn.execute(
                            "update public.profiles set leaderboard_visible = false where id = auth.uid()"
                        )
    finally:
        await db.close()


@pytest.fixture(scope="module")
def site(xpbase_template: NoopExecutor) -> Iterator[str]:
    """The base URL of ``xpbase serve`` on one database holding the events and the servers below."""
    with cloned_database(xpbase_template, "xpbase_pages") as url:
        asyncio.run(_community(url))
        asyncio.run(_servers(url))
        with served(url) as base:
            yield base


def test_visitor_sees_events_with_gates_places_and_no_private_links(site: str) -> None:
    """Soonest first; gates in words; full with a waiting list; past events and meeting links left out."""
    ARTIFACTS.mkdir(exist_ok=True)
    base = site
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            for viewport, suffix in (({"width": 1280, "height": 900}, ""), (PHONE, "-phone")):
                page = browser.new_page(viewport=viewport)
                page.goto(base + "/")
                page.get_by_role("link", name="Events", exact=True).first.click()
                page.wait_for_url("**/events")
                playwright_api.expect(page.locator("h1")).to_have_text("Events and dungeons")
                cards = page.locator("ol.events li")
                playwright_api.expect(cards).to_have_count(2)
                fair, raid = cards.nth(0), cards.nth(1)
                playwright_api.expect(fair.locator("h2")).to_contain_text("Career fair")
                playwright_api.expect(fair.locator(".gate")).to_have_text("Needs Reality status Grounded")
                playwright_api.expect(fair.locator(".places")).to_have_text(
                    "Full (2 places) · 1 on the waiting list"
                )
                playwright_api.expect(fair.locator(".where")).to_have_text("Community hall")
                playwright_api.expect(fair.locator(".when")).to_contain_text("18:00–20:00 UTC")
                playwright_api.expect(raid.locator("h2")).to_contain_text("Dungeon")
                playwright_api.expect(raid.locator(".gate")).to_have_text("Needs level 5 · tier Member")
                playwright_api.expect(raid.locator(".places")).to_have_text("0 signed up · no limit")
                playwright_api.expect(raid.locator(".xp")).to_have_text("+80 XP for attending")
                text = page.locator("main").inner_text()
                assert SECRET_LINK not in text and "Last week" not in text
                assert SECRET_LINK not in page.content()
                assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
                page.screenshot(path=str(ARTIFACTS / f"events{suffix}.png"), full_page=True)
                page.close()

            page = browser.new_page()
            page.goto(base + "/events?kind=dungeon")
            playwright_api.expect(page.locator("h1")).to_have_text("Dungeons")
            playwright_api.expect(page.locator("ol.events li h2")).to_contain_text(["Night raid"])
            page.close()
        finally:
            browser.close()
        assert httpx.get(base + "/events?kind=raids").status_code == 400


def test_a_server_board_ranks_that_servers_visible_members(site: str) -> None:
    """?server=1 shows Ana then Ben (Hid hides, Zed is elsewhere); a bad id is a 400 page."""
    base = site
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(base + "/?server=1")
            playwright_api.expect(page.locator("h1")).to_have_text("Server 1 leaderboard")
            playwright_api.expect(page.locator("ol.board li .name")).to_have_text(["Ana", "Ben"])
            playwright_api.expect(page.locator("ol.board li .rank")).to_have_text(["1", "2"])
            page.goto(base + "/")
            playwright_api.expect(page.locator("ol.board li .name").first).to_have_text("Zed")
            page.close()
        finally:
            browser.close()
        assert httpx.get(base + "/?server=not-an-id").status_code == 400
        assert httpx.get(base + "/?server=1&board=layer&layer=reality").status_code == 400
