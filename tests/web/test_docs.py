"""``/docs`` in a real browser with no internet: the Swagger UI comes from the service itself.

``xpbase serve`` runs on a free port; Chromium (Debian's ``/usr/bin/chromium``, driven by Playwright)
may reach 127.0.0.1 only: every request to another host is aborted and recorded. The page must list
the API's routes (tags and operations, e.g. ``getLeaderboard``) and ask no other host for anything.
Screenshot: tests/artifacts/docs.png (git-ignored).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.web.serve import free_port
from tests.web.test_pages import ARTIFACTS, CHROMIUM, playwright_api, pytestmark
from xpbase.settings import REPO_ROOT

__all__ = ["playwright_api", "pytestmark"]  # the same browser requirement as the page tests


@pytest.fixture
def base(database_url: str) -> Iterator[str]:
    """``xpbase serve`` on a free port of 127.0.0.1; its base URL."""
    data_dir = Path(tempfile.mkdtemp(prefix="xpbase-docs-"))
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "XPBASE_DATA_DIR": str(data_dir),
        "XPBASE_PORT": str(port),
        "XPBASE_SEASON_FINALIZE_INTERVAL": "0",
        "XPBASE_LEADERBOARD_COMPACT_INTERVAL": "0",
    }
    env.pop("DISCORD_TOKEN", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "xpbase.cli", "serve"],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            assert server.poll() is None, server.stdout.read().decode() if server.stdout else "serve exited"
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield url
    finally:
        server.send_signal(signal.SIGINT)
        server.wait()
        shutil.rmtree(data_dir, ignore_errors=True)


def test_docs_list_the_routes_with_no_internet(base: str) -> None:
    """Only 127.0.0.1 is reachable, and the Swagger UI still shows every tag and the operations."""
    ARTIFACTS.mkdir(exist_ok=True)
    tags = [tag["name"] for tag in httpx.get(f"{base}/openapi.json").json()["tags"]]
    assert "leaderboards" in tags
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            blocked: list[str] = []

            def only_localhost(route: playwright_api.Route) -> None:
                if urlsplit(route.request.url).hostname == "127.0.0.1":
                    route.continue_()
                else:
                    blocked.append(route.request.url)
                    route.abort("internetdisconnected")

            context.route("**/*", only_localhost)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{base}/docs")
            operation = page.locator("[id$='-getLeaderboard']").first
            # Swagger UI renders the whole document (80-odd operations) before the first one shows: on a
            # loaded machine that took longer than Playwright's 5 s default; wait for it as for a page load.
            playwright_api.expect(operation).to_be_visible(timeout=60_000)
            playwright_api.expect(operation).to_contain_text("/v1/leaderboards/")
            shown = page.locator(".opblock-tag").all_inner_texts()
            assert [name for name in tags if not any(text.startswith(name) for text in shown)] == []
            assert page.locator(".opblock").count() >= 20
            page.screenshot(path=str(ARTIFACTS / "docs.png"), full_page=False)
            assert errors == [], f"the page raised: {errors}"
            assert blocked == [], f"the page asked other hosts: {blocked}"
        finally:
            browser.close()
