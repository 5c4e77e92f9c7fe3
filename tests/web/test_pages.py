"""Public pages in a real browser: ``xpbase demo``, ``xpbase serve``; Chromium opens ``/`` and ``/u/<id>``.

Playwright for Python drives Debian's chromium (``/usr/bin/chromium``; `.ci/run` installs it). Screenshots
land in tests/artifacts/ (git-ignored): ``leaderboard.png``, ``leaderboard-phone.png``, ``member.png`` and
``member-phone.png``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.web.serve import free_port, serve_env, served
from xpbase.db import switch_role
from xpbase.settings import REPO_ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO_ROOT / "tests" / "artifacts"
PHONE = {"width": 390, "height": 844}

#: `make test` sets it: the browser tests then fail, instead of skipping, without Playwright or chromium.
REQUIRE_BROWSER = os.environ.get("XPBASE_REQUIRE_BROWSER") == "1"
NO_CHROMIUM = "chromium is not installed (apt-get install chromium; .ci/run does)"
if REQUIRE_BROWSER and not Path(CHROMIUM).exists():
    pytest.fail(NO_CHROMIUM, pytrace=False)
if REQUIRE_BROWSER:
    import playwright.sync_api as playwright_api  # an ImportError fails the run under make test
else:
    playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=NO_CHROMIUM)


@dataclass(frozen=True)
class Site:
    base: str
    database_url: str
    hidden_name: str
    top: list[tuple[int, str, str]]  # rank, name, profile id as a visitor sees the first rows


async def _hide_one(url: str) -> tuple[str, list[tuple[int, str, str]]]:
    """Hide the demo's third member (as themself); their name and the public top 5."""
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await switch_role(conn, "anon")
            board = await conn.fetch(
                "select rank, display_name, profile_id from public.leaderboard('all_time', null, null, 5, 1)"
            )
        hidden = board[2]
        async with conn.transaction():
            await switch_role(
                conn, "authenticated", {"role": "authenticated", "sub": str(hidden["profile_id"])}
            )
            await conn.execute(
                "update public.profiles set leaderboard_visible = false where id = (select auth.uid())"
            )
        async with conn.transaction():
            await switch_role(conn, "anon")
            after = await conn.fetch(
                "select rank, display_name, profile_id from public.leaderboard('all_time', null, null, 5, 1)"
            )
        return hidden["display_name"], [(r["rank"], r["display_name"], str(r["profile_id"])) for r in after]
    finally:
        await conn.close()


@pytest.fixture
def site(database_url: str) -> Iterator[Site]:
    """A demo community (seed 7, ten days) one member hidden, served by ``xpbase serve`` on a free port."""
    data_dir = Path(tempfile.mkdtemp(prefix="xpbase-demo-"))
    try:
        demo = subprocess.run(
            [sys.executable, "-m", "xpbase.cli", "demo", "--seed", "7", "--days", "10"],
            env=serve_env(database_url, data_dir, free_port()),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    assert demo.returncode == 0, demo.stderr
    hidden, top = asyncio.run(_hide_one(database_url))
    with served(database_url) as base:
        yield Site(base, database_url, hidden, top)


def test_visitor_sees_the_board_and_a_member_page_on_desktop_and_phone(site: Site) -> None:
    """Ranks and names in order, the hidden member absent, links to member pages; on a phone too."""
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            for viewport, suffix in (({"width": 1280, "height": 900}, ""), (PHONE, "-phone")):
                page = browser.new_page(viewport=viewport, device_scale_factor=2 if suffix else 1)
                failed: list[str] = []
                page.on("requestfailed", lambda request, failed=failed: failed.append(request.url))
                page.goto(site.base + "/")
                playwright_api.expect(page.locator("h1")).to_have_text("All-time leaderboard")
                rows = page.locator("ol.board li")
                for index, (rank, name, pid) in enumerate(site.top):
                    row = rows.nth(index)
                    playwright_api.expect(row.locator(".rank")).to_have_text(str(rank))
                    playwright_api.expect(row.locator(".name")).to_have_text(name)
                    assert row.locator("a").get_attribute("href") == f"/u/{pid}"
                    assert row.locator(".meta").inner_text().startswith("Level ")
                assert site.hidden_name not in page.locator("ol.board").inner_text()
                # Nothing is cut off on a phone: the page is no wider than the screen.
                assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
                page.screenshot(path=str(ARTIFACTS / f"leaderboard{suffix}.png"), full_page=True)

                rank, name, pid = site.top[0]
                rows.first.locator("a").click()
                page.wait_for_url(f"**/u/{pid}")
                playwright_api.expect(page.locator("h1")).to_have_text(name)
                playwright_api.expect(page.locator(".profile .sub")).to_contain_text(f"rank #{rank}")
                assert page.locator("progress").count() == 1
                assert page.locator(".layer").count() == 2
                assert page.locator(".activity li").count() >= 1
                assert page.locator(".badges .badge").count() >= 1  # every demo member has First steps
                assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
                page.screenshot(path=str(ARTIFACTS / f"member{suffix}.png"), full_page=True)
                assert failed == [], f"requests that failed (external assets?): {failed}"
                page.close()

            # A season board and a layer board answer; the hidden member's page is a 404 like an unknown id.
            page = browser.new_page()
            for query, heading in (
                ("?board=layer&layer=reality", "Reality leaderboard"),
                ("?board=season&layer=cyber", "Cyber season"),
            ):
                page.goto(site.base + "/" + query)
                playwright_api.expect(page.locator("h1")).to_contain_text(heading)
            page.close()
        finally:
            browser.close()
    hidden_id = asyncio.run(_profile_id(site.database_url, site.hidden_name))
    assert httpx.get(f"{site.base}/u/{hidden_id}").status_code == 404
    assert httpx.get(f"{site.base}/v1/profiles/{hidden_id}").json()["error"]["code"] == "unknown_profile"
    card = httpx.get(f"{site.base}/v1/profiles/{site.top[0][2]}").json()
    assert (card["display_name"], card["rank"]) == (site.top[0][1], site.top[0][0])


async def _profile_id(url: str, name: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        return str(await conn.fetchval("select id from public.profiles where display_name = $1", name))
    finally:
        await conn.close()
