"""GET /v1/auth/{provider}/authorize is rate-limited per client address and in total (issue 18)."""

from __future__ import annotations

from typing import Any

import pytest
from quart.typing import TestClientProtocol as Client

from tests.service import flows
from tests.service.conftest import oauth_settings
from tests.service.standins import StandIns
from xpbase.db import Database


@pytest.fixture
def settings_overrides(oauth: StandIns) -> dict[str, Any]:
    return oauth_settings(oauth, forwarded_for_hops=1)


async def _start(client: Client, forwarded_for: str) -> int:
    response = await flows.authorize(client, "discord", headers={"X-Forwarded-For": forwarded_for})
    if response.status_code == 429:
        assert (await response.get_json())["error"]["code"] == "rate_limited"
    return response.status_code


async def test_sign_in_starts_are_limited_per_client_and_in_total(client: Client, db: Database) -> None:
    """3 per address, 5 in all: the 4th from one address and the 6th overall are 429, storing nothing."""
    async with db.as_service() as conn:
        await conn.execute(
            "update public.auth_settings set oauth_states_per_client = 3, oauth_states_total = 5"
        )
    assert [await _start(client, "203.0.113.1") for _ in range(4)] == [200, 200, 200, 429]
    # What the client writes left of the trusted proxy's entry does not make it someone else.
    assert await _start(client, "198.51.100.9, 203.0.113.1") == 429
    assert [await _start(client, "203.0.113.2") for _ in range(2)] == [200, 200]
    assert await _start(client, "203.0.113.3") == 429
    async with db.pool.acquire() as conn:
        assert await conn.fetchval("select count(*) from private.oauth_states") == 5
        # Expired states stop counting.
        await conn.execute(
            "update private.oauth_states set created_at = now() - interval '2 hours',"
            " expires_at = now() - interval '1 hour'"
        )
    assert await _start(client, "203.0.113.1") == 200
