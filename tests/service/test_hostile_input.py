"""Hostile bodies: invalid UTF-8, 100,000-deep JSON and NUL answer 400, never 500; 405 carries Allow."""

from __future__ import annotations

import logging
import uuid

import pytest
from quart.typing import TestClientProtocol as Client

from tests.helpers import new_profile
from tests.service.conftest import make_token
from xpbase.db import Database

DEEP = b"[" * 100_000 + b"]" * 100_000
BODIES = {
    "invalid_utf8": b'{"refresh_token": "\xff\xfe"}',
    "deep_array": DEEP,
    "deep_object": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "nul_escape": b'{"refresh_token": "a\\u0000b", "display_name": "A\\u0000b"}',
    "forty_levels": b'{"refresh_token": ' + b"[" * 40 + b"]" * 40 + b"}",
}
JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize("path", ["/v1/auth/refresh", "/v1/auth/logout", "/v1/me"])
async def test_hostile_json_bodies_are_400_with_nothing_logged(
    path: str, client: Client, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """Every body is refused with the one error shape; no error is logged."""
    headers = dict(JSON)
    method = client.post
    if path == "/v1/me":
        headers["Authorization"] = f"Bearer {make_token(sub=str(await new_profile(db, 'Ada')))}"
        method = client.patch
    caplog.set_level(logging.WARNING)
    for kind, body in BODIES.items():
        response = await method(path, data=body, headers=headers)
        assert response.status_code == 400, (kind, await response.get_data())
        assert set((await response.get_json())["error"]) >= {"code", "message"}
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_method_not_allowed_carries_allow(client: Client) -> None:
    """A 405 names the methods the route has in Allow (RFC 9110 15.5.6), in the usual error body."""
    response = await client.delete("/v1/levels")
    assert response.status_code == 405
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET"}
    assert (await response.get_json())["error"]["code"] == "method_not_allowed"
    response = await client.put(f"/v1/profiles/{uuid.uuid4()}")
    assert response.status_code == 405 and "GET" in response.headers["Allow"]


async def test_booleans_are_not_ids(client: Client, db: Database) -> None:
    """``{"ids": [false]}`` is refused (400), not read as notification 0 (schemathesis' negative data)."""
    headers = {"Authorization": f"Bearer {make_token(sub=str(await new_profile(db, 'Ada')))}"}
    for body in ({"ids": [False]}, {"up_to_id": True}, {"ids": ["1"]}):
        response = await client.post("/v1/me/notifications/read", json=body, headers=headers)
        assert response.status_code == 400, body
    fine = await client.post("/v1/me/notifications/read", json={"ids": [1]}, headers=headers)
    assert fine.status_code == 200
