"""GET /v1/leaderboards/{board} by cursor (``after`` / ``next``) and its offset limit (issue 18).

Every answer is checked against the OpenAPI document (tests/service/test_api.py's Checked client).
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from quart.typing import TestClientProtocol as Client

from tests.service.conftest import make_token
from tests.service.test_api import Checked
from xpbase.db import Database

#: 30 members through the real RPCs: XP 10, 20 or 30 (long ties), reached at one of three moments.
CROWD = """
select public.award_xp(public.ensure_profile('discord', 'walk-' || g, 'Walker ' || g), 'xp_purchase',
                       'walk-' || g, 10 * (1 + g % 3), now() - (g % 3) * interval '1 minute')
  from generate_series(1, 30) as g
"""


@pytest.fixture
async def api(client: Client) -> Checked:
    document = await (await client.get("/openapi.json")).get_json()
    return Checked(client, document)


async def walk(api: Checked, url: str, token: str | None = None) -> list[list[dict[str, Any]]]:
    pages, after = [], None
    while True:
        status, body = await api.call("get", url + (f"&after={after}" if after else ""), token=token)
        assert status == 200, body
        pages.append(body["items"])
        after = body["next"]
        if after is None:
            return pages


async def test_pages_by_after_equal_the_pages_by_number(api: Checked, db: Database) -> None:
    """Walking by ``after``/``next`` lists the board the page numbers list, ranks shared across pages."""
    async with db.as_service() as conn:
        await conn.execute(CROWD)
        hidden = await conn.fetchval("select id from public.profiles where display_name = 'Walker 7'")
        await conn.execute("update public.profiles set leaderboard_visible = false where id = $1", hidden)
    by_after = await walk(api, "/v1/leaderboards/all_time?size=4")
    _, first = await api.call("get", "/v1/leaderboards/all_time?size=4")
    assert first["next_cursor"] == "2" and first["next"] is not None
    by_number, page = [], 1
    while True:
        _, body = await api.call("get", f"/v1/leaderboards/all_time?size=4&cursor={page}")
        assert body["next"] is None
        by_number.append(body["items"])
        if body["next_cursor"] is None:
            break
        page = int(body["next_cursor"])
    assert [row for p in by_after for row in p] == [row for p in by_number for row in p]
    assert len([row for p in by_after for row in p]) == 29
    assert str(hidden) not in {row["profile_id"] for p in by_after for row in p}
    assert any(p[0]["rank"] == q[-1]["rank"] for q, p in itertools.pairwise(by_after))
    # The hidden member sees themself on their own walk.
    own = await walk(api, "/v1/leaderboards/all_time?size=4", token=make_token(sub=str(hidden)))
    assert str(hidden) in {row["profile_id"] for p in own for row in p}
    # The layer board takes after too.
    layer = await walk(api, "/v1/leaderboards/layer?layer=cyber&size=7")
    assert len([row for p in layer for row in p]) == 29


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("after=1.2.3", "invalid_argument"),
        ("after=010.0.00000000-0000-0000-0000-000000000000", "invalid_argument"),
        ("after=10.0.00000000-0000-0000-0000-000000000000%20", "invalid_request"),
        ("after=10.0.ABCDEF00-0000-0000-0000-000000000000", "invalid_request"),
        ("after=10.0.00000000-0000-0000-0000-000000000000&cursor=2", "invalid_request"),
        ("after=10.0.00000000-0000-0000-0000-000000000000&server=1", "invalid_request"),
        ("size=100&cursor=101", "invalid_argument"),
    ],
)
async def test_bad_cursors_and_deep_page_numbers_are_400(api: Checked, query: str, code: str) -> None:
    status, body = await api.call("get", f"/v1/leaderboards/all_time?{query}")
    assert status == 400 and body["error"]["code"] == code, body


async def test_the_document_names_after_and_next(client: Client) -> None:
    document = await (await client.get("/openapi.json")).get_json()
    operation = document["paths"]["/v1/leaderboards/{board}"]["get"]
    assert "after" in {p["name"] for p in operation["parameters"]}
    page = operation["responses"]["200"]["content"]["application/json"]["schema"]
    if "$ref" in page:
        page = document["components"]["schemas"][page["$ref"].rsplit("/", 1)[1]]
    assert {"next", "next_cursor"} <= set(page["required"])
