"""The events page in a real browser: ``/events`` lists upcoming events and dungeons with their gates.

Playwright drives Debian's chromium as in tests/web/test_pages.py (same requirements and skip rules);
the screenshot lands in tests/artifacts/events.png.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.helpers import award, new_profile
from tests.web.serve import served
from tests.web.test_pages import ARTIFACTS, CHROMIUM, PHONE, playwright_api, pytestmark  # noqa: F401
from xpbase.db import Database, member_claims

SECRET_LINK = "https://meet.example.org/raid-secret"


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


def test_visitor_sees_events_with_gates_places_and_no_private_links(database_url: str) -> None:
    """Soonest first; gates in words; full with a waiting list; past events and meeting links left out."""
    asyncio.run(_community(database_url))
    ARTIFACTS.mkdir(exist_ok=True)
    with served(database_url) as base, playwright_api.sync_playwright() as p:
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
